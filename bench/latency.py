#!/usr/bin/env python3
"""bench/latency.py - one-in-flight append latency and append-to-reader
delivery latency, for hs (hs-append + hs-tail) and for Redis Streams (XADD
+ XREAD BLOCK).  Used by bench/serve.

  latency.py hs BIN_DIR ADDR STREAM COUNT RATE [tail]
  latency.py redis SOCKET STREAM COUNT RATE [tail]
  latency.py fsync DIR COUNT append|keepsize|overwrite

hs: one long-lived `hs-append --linger 0 --print-lsn` is fed one 100-byte line
at a time; the append latency of a record is the time from writing its line
to hs-append's stdin to reading its LSN on hs-append's stdout (so it includes
two pipe hops and hs-append itself, like any shell user's).  With `tail`, a
long-lived `hs-tail --format '%p\\n'` follows the stream and the delivery
latency of a record is the time from writing its line to reading it on
hs-tail's stdout.

redis: the same over a Unix socket: XADD STREAM * f PAYLOAD, one at a time,
latency until its reply is parsed; with `tail`, a second connection loops on
XREAD BLOCK 0 STREAMS STREAM <last id>.

fsync: the disk's share alone: COUNT times write 219 bytes (a 100-byte
record's RocksDB WAL entry) to a file in DIR and fdatasync it, the file being
new and growing (append: what Redis's AOF does), preallocated past its end
with fallocate(FALLOC_FL_KEEP_SIZE) (keepsize: what RocksDB does with its
WAL), or fully written beforehand so that nothing but data changes
(overwrite); prints `fdatasync p50 A p99 B` in microseconds.

One record is in flight: the next is sent when the previous one's ack (and,
with `tail`, its delivery) has arrived, and no sooner than its slot at RATE
records/s (0: back to back).  The first WARM records are not counted.  Prints
one line: `append p50 A p99 B delivery p50 C p99 D` in microseconds (`-`
without tail).  Exit status 1 with a message on any failure.
"""
import math
import os
import selectors
import socket
import subprocess
import sys
import time

WARM = 200
SIZE = 100


def payload(i):
    s = b"%08d" % i
    return s + b"x" * (SIZE - len(s))


def pct(v, p):
    if not v:
        return "-"
    v = sorted(v)
    return "%d" % round(v[max(0, math.ceil(p * len(v)) - 1)] / 1000)


def fail(msg):
    sys.stderr.write("latency.py: %s\n" % msg)
    sys.exit(1)


class Lines:
    """Complete lines from a pipe, read as they come."""

    def __init__(self, fd):
        self.fd, self.buf = fd, b""

    def read(self):
        d = os.read(self.fd, 65536)
        if not d:
            fail("a client closed its output (did it fail? see its stderr)")
        self.buf += d
        *lines, self.buf = self.buf.split(b"\n")
        return lines


class Resp:
    """An incremental RESP2 reply parser."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _parse(self, i):
        t, e = self.buf[i:i + 1], self.buf.find(b"\r\n", i)
        if e < 0:
            return None
        line = self.buf[i + 1:e]
        if t in (b"+", b":"):
            return line, e + 2
        if t == b"-":
            fail("redis error: %s" % line.decode())
        n = int(line)
        if t == b"$":
            if n < 0:
                return None, e + 2
            if len(self.buf) < e + 2 + n + 2:
                return None
            return self.buf[e + 2:e + 2 + n], e + 4 + n
        if t == b"*":
            out, j = [], e + 2
            for _ in range(max(n, 0)):
                r = self._parse(j)
                if r is None:
                    return None
                out.append(r[0])
                j = r[1]
            return out, j
        fail("bad reply from redis")

    def replies(self):
        d = self.sock.recv(1 << 20)
        if not d:
            fail("redis closed the connection")
        self.buf += d
        out = []
        while self.buf:
            r = self._parse(0)
            if r is None:
                break
            out.append(r[0])
            self.buf = self.buf[r[1]:]
        return out


def cmd(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def run(send, on_ready, sel, count, rate, tail):
    """The measuring loop; on_ready(key) returns [('ack'|'del', i), ...]."""
    lat, dl = [], []
    t0 = time.perf_counter_ns()
    for i in range(WARM + count):
        if rate:
            slot = t0 + i * 1_000_000_000 // rate
            wait = slot - time.perf_counter_ns()
            if wait > 0:
                time.sleep(wait / 1e9)  # not a busy wait: 2 cores are shared
        ts = time.perf_counter_ns()
        send(i)
        acked, delivered = False, not tail
        while not (acked and delivered):
            for key, _ in sel.select(5.0) or fail("no answer within 5 s (record %d)" % i):
                now = time.perf_counter_ns()
                for what, j in on_ready(key):
                    if j != i:
                        fail("%s of record %d while waiting for %d" % (what, j, i))
                    if what == "ack":
                        acked = True
                        if i >= WARM:
                            lat.append(now - ts)
                    else:
                        delivered = True
                        if i >= WARM:
                            dl.append(now - ts)
    return lat, dl


def hs(bindir, addr, stream, count, rate, tail):
    sel = selectors.DefaultSelector()
    tp = None
    if tail:
        tp = subprocess.Popen([bindir + "/hs-tail", "-a", addr, "--format", "%p\n", stream],
                              stdout=subprocess.PIPE, bufsize=0)
        tl = Lines(tp.stdout.fileno())
        sel.register(tp.stdout, selectors.EVENT_READ, "tail")
    ap = subprocess.Popen([bindir + "/hs-append", "-a", addr, "--linger", "0", "--print-lsn",
                           stream], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    al = Lines(ap.stdout.fileno())
    sel.register(ap.stdout, selectors.EVENT_READ, "append")
    nacked = [0]
    if tail:
        # hs-tail starts at the tail: wait until it sees a record appended
        # after it started, so that no measured record is missed.
        deadline = time.time() + 10
        while True:
            ap.stdin.write(b"sync\n")
            al.read()
            r = sel.select(0.2)
            if any(k.data == "tail" for k, _ in r):
                if b"sync" in tl.read():
                    break
            if time.time() > deadline:
                fail("hs-tail did not deliver within 10 s")
        time.sleep(0.3)
        while sel.select(0.05):
            tl.read()

    def send(i):
        ap.stdin.write(payload(i) + b"\n")

    def ready(key):
        out = []
        if key.data == "append":
            for _ in al.read():
                out.append(("ack", nacked[0]))
                nacked[0] += 1
        else:
            for line in tl.read():
                if line != b"sync":
                    out.append(("del", int(line[:8])))
        return out

    try:
        return run(send, ready, sel, count, rate, tail)
    finally:
        ap.stdin.close()
        if ap.wait(10):
            fail("hs-append exited with status %d" % ap.returncode)
        if tp:
            tp.terminate()
            tp.wait(10)


def redis(path, stream, count, rate, tail):
    sel = selectors.DefaultSelector()
    w = socket.socket(socket.AF_UNIX)
    w.connect(path)
    wr = Resp(w)
    sel.register(w, selectors.EVENT_READ, "append")
    st = stream.encode()
    last = [b"$"]
    if tail:
        r = socket.socket(socket.AF_UNIX)
        r.connect(path)
        rr = Resp(r)
        sel.register(r, selectors.EVENT_READ, "tail")
        # XADD one record so that the reader's position is a concrete id.
        w.sendall(cmd(b"XADD", st, b"*", b"f", b"sync"))
        last[0] = wr.replies()[0]
        r.sendall(cmd(b"XREAD", b"BLOCK", b"0", b"STREAMS", st, last[0]))
    nacked = [0]

    def send(i):
        w.sendall(cmd(b"XADD", st, b"*", b"f", payload(i)))

    def ready(key):
        out = []
        if key.data == "append":
            for _ in wr.replies():
                out.append(("ack", nacked[0]))
                nacked[0] += 1
        else:
            for rep in rr.replies():
                for _name, entries in rep:
                    for eid, fields in entries:
                        last[0] = eid
                        out.append(("del", int(fields[1][:8])))
            r.sendall(cmd(b"XREAD", b"BLOCK", b"0", b"STREAMS", st, last[0]))
        return out

    return run(send, ready, sel, count, rate, tail)


def fsync_probe(d, count, mode):
    """write + fdatasync of one WAL-entry-sized piece, COUNT times."""
    path = os.path.join(d, "latency-fsync.%d" % os.getpid())
    size = 64 << 20
    buf = b"x" * 219
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    try:
        if mode == "keepsize":
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
            if libc.fallocate(fd, 1, 0, size):  # 1: FALLOC_FL_KEEP_SIZE
                fail("fallocate: %s" % os.strerror(ctypes.get_errno()))
        elif mode == "overwrite":
            z = bytes(1 << 20)
            for _ in range(size >> 20):
                os.write(fd, z)
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        elif mode != "append":
            raise ValueError
        lat = []
        for _ in range(WARM + count):
            t = time.perf_counter_ns()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append(time.perf_counter_ns() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return lat[WARM:]


def main():
    a = sys.argv[1:]
    try:
        if a[0] == "fsync" and len(a) == 4:
            lat = fsync_probe(a[1], int(a[2]), a[3])
            print("fdatasync p50 %s p99 %s" % (pct(lat, .5), pct(lat, .99)))
            return
        if a[0] == "hs" and len(a) in (6, 7):
            lat, dl = hs(a[1], a[2], a[3], int(a[4]), int(a[5]), len(a) == 7)
        elif a[0] == "redis" and len(a) in (5, 6):
            lat, dl = redis(a[1], a[2], int(a[3]), int(a[4]), len(a) == 6)
        else:
            raise IndexError
    except (IndexError, ValueError):
        fail("usage: latency.py hs BIN_DIR ADDR STREAM COUNT RATE [tail] | "
             "redis SOCKET STREAM COUNT RATE [tail] | fsync DIR COUNT append|keepsize|overwrite")
    print("append p50 %s p99 %s delivery p50 %s p99 %s"
          % (pct(lat, .5), pct(lat, .99), pct(dl, .5), pct(dl, .99)))


if __name__ == "__main__":
    main()
