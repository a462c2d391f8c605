"""A Python request handler for the attribution tests. Each request builds a response (garbage)
and a record; in "leak" mode record_request keeps every record for ever, in "clean" mode the
last 500 only. Usage: python3 service.py leak|clean REQUESTS_PER_SECOND"""
import collections
import sys
import time

KEPT = []
RECENT = collections.deque(maxlen=500)


def record_request(i, leak):
    record = {"id": i, "path": "/orders/%d" % i, "user": "u%d" % (i % 97), "ms": i % 13}
    if leak:
        KEPT.append(record)
    else:
        RECENT.append(record)


def handle(i, leak):
    body = ("x" * 256 + str(i)).encode()
    record_request(i, leak)
    return len(body)


def main():
    leak = sys.argv[1] == "leak"
    per_second = int(sys.argv[2])
    i = 0
    while True:
        t0 = time.monotonic()
        for _ in range(max(1, per_second // 10)):
            handle(i, leak)
            i += 1
        left = 0.1 - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)


if __name__ == "__main__":
    main()
