#!/usr/bin/python3
"""The other end of `csjobs receive` in tests/receive.rs: a real AMQP client (pika, Debian's
python3-pika), publishing as the register agent does and reading what was dead-lettered.

    amqp.py publish URL [PACE_MS]   one JSON object a line on stdin:
                                    {"content": hex, "compress": "gzip" | "zip" | null,
                                     "headers": {...}, "message_id": ..., "content_encoding": ...,
                                     "exchange": ..., "routing_key": ...}: the body is content
                                    compressed here (gzip, or zipfile's zip of one entry); or
                                    {"body": hex, ...}: that body as it is. Published persistent
                                    with publisher confirms; prints "published N" at the end
    amqp.py get URL QUEUE           takes every message of QUEUE (acknowledged), one JSON
                                    object a line: body (hex), headers, message_id
    amqp.py ready URL QUEUE         the messages ready in QUEUE (a passive declare: the
                                    queue's own count, not the periodic statistics)
    amqp.py hold URL QUEUE          takes one message without acknowledging it and disconnects:
                                    the broker delivers it again (redelivered)
    amqp.py declare-classic URL QUEUE   a durable classic queue (a mismatch for receive)
"""
import gzip
import io
import json
import sys
import time

import zipfile

import pika


def body_of(m):
    if "body" in m:
        return bytes.fromhex(m["body"])
    content = bytes.fromhex(m["content"])
    how = m.get("compress")
    if how == "gzip":
        return gzip.compress(content)
    if how == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("sales.json", content)
        return buf.getvalue()
    return content


def connect(url):
    return pika.BlockingConnection(pika.URLParameters(url))


def publish(url, pace_ms):
    conn = connect(url)
    ch = conn.channel()
    ch.confirm_delivery()
    n = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        m = json.loads(line)
        props = pika.BasicProperties(
            headers=m.get("headers"),
            message_id=m.get("message_id"),
            content_encoding=m.get("content_encoding"),
            delivery_mode=2,
        )
        ch.basic_publish(
            m.get("exchange", "csjobs.sales"),
            m.get("routing_key", ""),
            body_of(m),
            props,
            mandatory=True,
        )
        n += 1
        if pace_ms:
            time.sleep(pace_ms / 1000.0)
    conn.close()
    print("published %d" % n, flush=True)


def get(url, queue):
    conn = connect(url)
    ch = conn.channel()
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=False)
        if method is None:
            break
        headers = {}
        for k, v in (props.headers or {}).items():
            headers[k] = v.decode() if isinstance(v, bytes) else v
        print(
            json.dumps(
                {"body": body.hex(), "headers": headers, "message_id": props.message_id},
                default=str,
            ),
            flush=True,
        )
        ch.basic_ack(method.delivery_tag)
    conn.close()


def ready(url, queue):
    conn = connect(url)
    ok = conn.channel().queue_declare(queue, passive=True)
    print(ok.method.message_count, flush=True)
    conn.close()


def hold(url, queue):
    conn = connect(url)
    method, _, _ = conn.channel().basic_get(queue, auto_ack=False)
    conn.close()
    print("held" if method else "empty", flush=True)


def declare_classic(url, queue):
    conn = connect(url)
    conn.channel().queue_declare(queue, durable=True)
    conn.close()


if __name__ == "__main__":
    what, url = sys.argv[1], sys.argv[2]
    if what == "publish":
        publish(url, float(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif what == "get":
        get(url, sys.argv[3])
    elif what == "ready":
        ready(url, sys.argv[3])
    elif what == "hold":
        hold(url, sys.argv[3])
    elif what == "declare-classic":
        declare_classic(url, sys.argv[3])
    else:
        sys.exit("unknown command " + what)
