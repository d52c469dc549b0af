"""What the console's browser tests share: Console (a real fjord-console
process on a free port, its properties written from a dict), http() (a plain
GET or form POST, for what a browser cannot send: a POST without the CSRF
token), chromium() (Debian's headless Chromium through chromium-driver and
selenium; the driver's path is given, so nothing is downloaded) and Browser
(page helpers that wait for the next page after each click)."""
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from fjordtest.binaries import bin_dir, require, skip_or_fail
from fjordtest.net import HOST, free_port
from fjordtest.proc import Proc

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def console_binary():
    return os.path.join(bin_dir(), "fjord-console")


def require_console():
    """fjord-console built, Chromium and its driver installed (skip_or_fail otherwise)."""
    require(console_binary())
    for p in (CHROMIUM, CHROMEDRIVER):
        if not os.access(p, os.X_OK):
            skip_or_fail("%s missing (apt-get install chromium chromium-driver)" % p)


class Console(Proc):
    def __init__(self, workdir, name, props):
        super().__init__(name, workdir)
        self.port = free_port()
        self.cfg = os.path.join(workdir, name + ".properties")
        props = dict(props)
        props["listeners"] = "http://%s:%d" % (HOST, self.port)
        with open(self.cfg, "w") as f:
            for k, v in props.items():
                f.write("%s=%s\n" % (k, v))

    def start(self):
        self.launch([console_binary(), self.cfg])
        self.wait_listening(self.port)
        return self

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)


def http(url, data=None, timeout=30):
    """(status, body) of a GET, or of a form POST when data is a dict."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def chromium():
    """A headless Chromium session (quit() it)."""
    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--window-size=1400,1000"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver


def screenshot_dir():
    shots = tempfile.mkdtemp(prefix="fjord-console-screenshots-")
    print("\nconsole screenshots in %s" % shots)
    return shots


def set_text(b, elem_id, text):
    """Replace the text of the input `elem_id` in Browser `b`."""
    el = b.d.find_element(By.ID, elem_id)
    el.clear()
    el.send_keys(text)


class Browser:
    def __init__(self, driver, base, shots):
        self.d = driver
        self.base = base
        self.shots = shots
        self.n = 0

    def go(self, path):
        self.d.get(self.base + path)

    def shot(self, name):
        self.n += 1
        p = os.path.join(self.shots, "%02d-%s.png" % (self.n, name))
        self.d.save_screenshot(p)
        return p

    def click(self, elem_id):
        """Click a submit button or link and wait for the next page to load."""
        old = self.d.find_element(By.TAG_NAME, "html")
        self.d.find_element(By.ID, elem_id).click()

        def left(_):
            # chromedriver may answer a probe of an element of the page being
            # replaced with "Node with given id does not belong to the
            # document" (a WebDriverException) instead of a stale reference.
            try:
                return EC.staleness_of(old)(self.d)
            except WebDriverException as e:
                return "does not belong to the document" in str(e)

        WebDriverWait(self.d, 30).until(left)
        WebDriverWait(self.d, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def body(self):
        return self.d.find_element(By.TAG_NAME, "body").text

    def text(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css).text

    def rows(self, table_id):
        out = []
        for tr in self.d.find_elements(By.CSS_SELECTOR, "#%s tbody tr" % table_id):
            out.append([td.text for td in tr.find_elements(By.TAG_NAME, "td")])
        return out

    def wait(self, cond, timeout, what, every=1.0):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                if cond():
                    return
            except Exception as ex:  # noqa: BLE001 - page may be mid-refresh
                last = ex
            time.sleep(every)
        raise AssertionError("%s not seen within %ss (%r); page:\n%s"
                             % (what, timeout, last, self.d.find_element(By.TAG_NAME, "body").text))
