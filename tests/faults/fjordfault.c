/* fjordfault: an LD_PRELOAD shim that makes writes and syncs fail with EIO or
 * ENOSPC for files under a path prefix, on demand, so tests can drive Fjord's
 * storage-fault handling on real processes (issue 19). Built by the tests
 * (tests/python/fjordtest/faults.py) with `cc -shared -fPIC`; never committed
 * as a binary.
 *
 * Environment of the process under test:
 *   FJORDFAULT_PREFIX  only files whose path starts with this are affected
 *                      (paths as given to open/openat/creat, made absolute
 *                      against the cwd or the dirfd when relative)
 *   FJORDFAULT_CTL     a control file: while it exists the injector is armed.
 *                      Its content: an error name (`eio` or `enospc`), then
 *                      optional words: `write` / `sync` (which calls fail:
 *                      writes, syncs, or both by default) and `after=N`
 *                      (let N more bytes through after arming, then fail).
 *                      Re-read at most every 20 ms; removing it disarms.
 *
 * Wrapped: open/open64/openat/openat64/creat/creat64 (track fds), close,
 * write, pwrite, pwrite64, writev, pwritev, pwritev64, fsync, fdatasync,
 * sync_file_range, fallocate, fallocate64, posix_fallocate.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536

static atomic_uchar tracked[MAX_FDS];
static char prefix[PATH_MAX];
static size_t prefix_len;
static char ctl_path[PATH_MAX];

/* Armed state, refreshed from the control file. */
static atomic_int armed_err;       /* 0 = disarmed, else EIO / ENOSPC */
static atomic_int fail_writes;
static atomic_int fail_syncs;
static atomic_llong budget;        /* bytes still let through */
static atomic_llong last_check_ns;
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((constructor)) static void init(void) {
    const char *p = getenv("FJORDFAULT_PREFIX");
    const char *c = getenv("FJORDFAULT_CTL");
    if (p) {
        strncpy(prefix, p, sizeof prefix - 1);
        prefix_len = strlen(prefix);
    }
    if (c)
        strncpy(ctl_path, c, sizeof ctl_path - 1);
}

#define REAL(name) \
    static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* Re-read the control file (at most every 20 ms). */
static void refresh(void) {
    if (!ctl_path[0])
        return;
    long long t = now_ns();
    if (t - atomic_load(&last_check_ns) < 20000000LL)
        return;
    pthread_mutex_lock(&ctl_lock);
    if (t - atomic_load(&last_check_ns) >= 20000000LL) {
        atomic_store(&last_check_ns, t);
        char buf[256] = {0};
        int was = atomic_load(&armed_err);
        FILE *f = fopen(ctl_path, "re");
        if (!f) {
            atomic_store(&armed_err, 0);
        } else if (!was) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            int err = strstr(buf, "enospc") ? ENOSPC : EIO;
            int w = strstr(buf, "write") != NULL, s = strstr(buf, "sync") != NULL;
            if (!w && !s)
                w = s = 1;
            long long after = 0;
            const char *a = strstr(buf, "after=");
            if (a)
                after = atoll(a + 6);
            atomic_store(&fail_writes, w);
            atomic_store(&fail_syncs, s);
            atomic_store(&budget, after);
            atomic_store(&armed_err, err);
        }
        if (f)
            fclose(f);
    }
    pthread_mutex_unlock(&ctl_lock);
}

static int is_tracked(int fd) {
    return fd >= 0 && fd < MAX_FDS && atomic_load(&tracked[fd]);
}

/* 0 to let the call through, else the errno to fail it with. `bytes` is
 * what a write would write (counted against after=N). */
static int fault(int fd, int is_sync, long long bytes) {
    if (!is_tracked(fd))
        return 0;
    refresh();
    int err = atomic_load(&armed_err);
    if (!err)
        return 0;
    if (is_sync ? !atomic_load(&fail_syncs) : !atomic_load(&fail_writes))
        return 0;
    if (bytes > 0) {
        if (atomic_fetch_sub(&budget, bytes) - bytes >= 0)
            return 0;
    } else if (atomic_load(&budget) > 0) {
        return 0;
    }
    return err;
}

static void track(int fd, int dirfd, const char *path) {
    if (fd < 0 || fd >= MAX_FDS)
        return;
    int hit = 0;
    if (prefix_len && path) {
        char full[PATH_MAX * 2];
        if (path[0] == '/') {
            snprintf(full, sizeof full, "%s", path);
        } else {
            char base[PATH_MAX] = {0};
            if (dirfd == AT_FDCWD) {
                if (!getcwd(base, sizeof base))
                    base[0] = 0;
            } else {
                char link[64];
                snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
                ssize_t n = readlink(link, base, sizeof base - 1);
                base[n > 0 ? n : 0] = 0;
            }
            snprintf(full, sizeof full, "%s/%s", base, path);
        }
        hit = strncmp(full, prefix, prefix_len) == 0;
    }
    atomic_store(&tracked[fd], (unsigned char)hit);
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    REAL(open);
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    int fd = real_open(path, flags, m);
    track(fd, AT_FDCWD, path);
    return fd;
}
int open64(const char *path, int flags, ...) {
    REAL(open64);
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    int fd = real_open64(path, flags, m);
    track(fd, AT_FDCWD, path);
    return fd;
}
int openat(int dirfd, const char *path, int flags, ...) {
    REAL(openat);
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    int fd = real_openat(dirfd, path, flags, m);
    track(fd, dirfd, path);
    return fd;
}
int openat64(int dirfd, const char *path, int flags, ...) {
    REAL(openat64);
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    int fd = real_openat64(dirfd, path, flags, m);
    track(fd, dirfd, path);
    return fd;
}
int creat(const char *path, mode_t mode) {
    REAL(creat);
    int fd = real_creat(path, mode);
    track(fd, AT_FDCWD, path);
    return fd;
}
int creat64(const char *path, mode_t mode) {
    REAL(creat64);
    int fd = real_creat64(path, mode);
    track(fd, AT_FDCWD, path);
    return fd;
}
int close(int fd) {
    REAL(close);
    if (fd >= 0 && fd < MAX_FDS)
        atomic_store(&tracked[fd], 0);
    return real_close(fd);
}

#define FAIL_IF(fd, sync, bytes) do { \
        int e_ = fault((fd), (sync), (bytes)); \
        if (e_) { errno = e_; return -1; } \
    } while (0)

static long long iov_len(const struct iovec *iov, int n) {
    long long t = 0;
    for (int i = 0; i < n; i++)
        t += (long long)iov[i].iov_len;
    return t;
}

ssize_t write(int fd, const void *b, size_t n) {
    REAL(write); FAIL_IF(fd, 0, (long long)n); return real_write(fd, b, n);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) {
    REAL(pwrite); FAIL_IF(fd, 0, (long long)n); return real_pwrite(fd, b, n, o);
}
ssize_t pwrite64(int fd, const void *b, size_t n, off64_t o) {
    REAL(pwrite64); FAIL_IF(fd, 0, (long long)n); return real_pwrite64(fd, b, n, o);
}
ssize_t writev(int fd, const struct iovec *v, int c) {
    REAL(writev); FAIL_IF(fd, 0, iov_len(v, c)); return real_writev(fd, v, c);
}
ssize_t pwritev(int fd, const struct iovec *v, int c, off_t o) {
    REAL(pwritev); FAIL_IF(fd, 0, iov_len(v, c)); return real_pwritev(fd, v, c, o);
}
ssize_t pwritev64(int fd, const struct iovec *v, int c, off64_t o) {
    REAL(pwritev64); FAIL_IF(fd, 0, iov_len(v, c)); return real_pwritev64(fd, v, c, o);
}
int fsync(int fd) {
    REAL(fsync); FAIL_IF(fd, 1, 0); return real_fsync(fd);
}
int fdatasync(int fd) {
    REAL(fdatasync); FAIL_IF(fd, 1, 0); return real_fdatasync(fd);
}
int sync_file_range(int fd, off64_t o, off64_t n, unsigned int flags) {
    REAL(sync_file_range); FAIL_IF(fd, 1, 0); return real_sync_file_range(fd, o, n, flags);
}
int fallocate(int fd, int mode, off_t o, off_t n) {
    REAL(fallocate); FAIL_IF(fd, 0, 0); return real_fallocate(fd, mode, o, n);
}
int fallocate64(int fd, int mode, off64_t o, off64_t n) {
    REAL(fallocate64); FAIL_IF(fd, 0, 0); return real_fallocate64(fd, mode, o, n);
}
int posix_fallocate(int fd, off_t o, off_t n) {
    /* posix_fallocate returns the error instead of setting errno. */
    REAL(posix_fallocate);
    int e = fault(fd, 0, 0);
    return e ? e : real_posix_fallocate(fd, o, n);
}
