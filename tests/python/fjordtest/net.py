"""Addresses: every process under test listens on 127.0.0.1, on ports the
kernel hands out."""
import socket

HOST = "127.0.0.1"


def free_ports(n):
    """n distinct free ports (all bound at once, then released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((HOST, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def free_port():
    return free_ports(1)[0]


def hostport(port):
    return "%s:%d" % (HOST, port)
