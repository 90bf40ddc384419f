#!/usr/bin/python3
"""A TLS front for the local broker, for the amqps:// tests of tests/receive.rs:

    tls_proxy.py CERT KEY UPSTREAM_PORT

listens on a free loopback port (printed on the first line of stdout), takes TLS with CERT
and KEY, and passes the bytes on to 127.0.0.1:UPSTREAM_PORT in the clear. Runs until killed.
"""
import socket
import ssl
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, ctx, upstream_port):
    try:
        tls = ctx.wrap_socket(client, server_side=True)
    except (ssl.SSLError, OSError):
        client.close()
        return
    up = socket.create_connection(("127.0.0.1", upstream_port))
    threading.Thread(target=pump, args=(tls, up), daemon=True).start()
    pump(up, tls)


def main():
    cert, key, upstream_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, ctx, upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
