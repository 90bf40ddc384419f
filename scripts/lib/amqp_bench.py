#!/usr/bin/python3
"""The pika side of scripts/bench-receive.sh (Debian's python3-pika).

    amqp_bench.py publish URL EXCHANGE QUEUE DIR
                                             every file of DIR (sorted) as one message to
                                             EXCHANGE, plain, persistent, with the register
                                             agent's headers (cashCode from the file, salesId),
                                             then waits until QUEUE holds them all; prints
                                             the count
    amqp_bench.py drain URL QUEUE N PREFETCH the baseline: consumes N messages with that
                                             prefetch and manual acks (one ack with multiple
                                             per batch the broker has handed over, as
                                             receive does), writes nothing; prints the count
"""
import json
import os
import sys
import time

import pika


def connect(url):
    return pika.BlockingConnection(pika.URLParameters(url))


def ready(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def publish(url, exchange, queue, directory):
    names = sorted(os.listdir(directory))
    conn = connect(url)
    ch = conn.channel()
    before = ready(ch, queue)
    for n, name in enumerate(names, 1):
        with open(os.path.join(directory, name), "rb") as f:
            body = f.read()
        head = json.loads(body)
        props = pika.BasicProperties(
            headers={"cashCode": str(head["cash"]), "salesId": str(n)},
            message_id="bench-%d" % n,
            delivery_mode=2,
        )
        ch.basic_publish(exchange, "", body, props)
    # Without publisher confirms (a confirm per message would measure pika); the queue's own
    # count says when the broker holds them all.
    deadline = time.time() + 120
    while ready(ch, queue) < before + len(names):
        if time.time() > deadline:
            sys.exit("the queue did not fill up within 120 s")
        conn.sleep(0.05)
    conn.close()
    print(len(names), flush=True)


def drain(url, queue, n, prefetch):
    conn = connect(url)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    taken = 0
    unacked = None
    # inactivity_timeout: a generator that yields (None, None, None) when nothing came for a
    # moment, i.e. the broker has handed over all it had: acknowledge the batch then.
    for method, _props, _body in ch.consume(queue, auto_ack=False, inactivity_timeout=0.001):
        if method is None:
            if unacked is not None:
                ch.basic_ack(unacked, multiple=True)
                unacked = None
            continue
        taken += 1
        unacked = method.delivery_tag
        if taken % 1000 == 0 or taken >= n:
            ch.basic_ack(unacked, multiple=True)
            unacked = None
        if taken >= n:
            break
    ch.cancel()
    conn.close()
    print(taken, flush=True)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "publish":
        publish(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    elif what == "drain":
        drain(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("unknown command " + what)
