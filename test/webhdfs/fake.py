#!/usr/bin/env python3
"""fake.py - a small PROTOCOL FAKE of Hadoop WebHDFS, for tests only.

    python3 test/webhdfs/fake.py --root DIR [--port 0] [--user NAME]

This is not Hadoop and proves nothing about a real HDFS cluster: no HDFS or
WebHDFS server exists in Debian or on npm, so libtier's WebHDFS client is
tested against this fake, which follows the REST API as documented
(https://hadoop.apache.org/docs/r3.1.1/hadoop-project-dist/hadoop-hdfs/WebHDFS.html)
over a local directory.  It implements:

  PUT    ?op=CREATE[&overwrite=true|false]  two steps, as a NameNode and a
         DataNode do: the first request (no body) gets 307 with a Location on
         this same server ("&datanode=true" added); the bytes go to that
         Location and get 201.  An existing file with overwrite=false -> 403
         FileAlreadyExistsException.  Parent directories are created.
  POST   ?op=APPEND  the same two steps (307, then the bytes -> 200); 404 if
         the file is missing.
  GET    ?op=OPEN[&offset=N][&length=N][&noredirect=true]  307 to the
         "datanode" (or 200 {"Location": ...} with noredirect), which sends
         the byte range.  offset > length of the file -> 403 IOException.
  GET    ?op=GETFILESTATUS, ?op=LISTSTATUS (a file lists as itself with an
         empty pathSuffix), both 404 FileNotFoundException when missing.
  DELETE ?op=DELETE[&recursive=true]  {"boolean": true|false}; a non-empty
         directory without recursive -> 403 PathIsNotEmptyDirectoryException.
  PUT    ?op=RENAME&destination=/abs  {"boolean": false} when the source is
         missing, the destination exists or its parent does not (HDFS never
         overwrites on this rename).
  PUT    ?op=MKDIRS  {"boolean": true}.

Errors are JSON RemoteExceptions as Hadoop sends them.  With --user, any
request whose user.name differs gets 403 SecurityException (Hadoop's simple
authentication would take any name; this checks that the client sends it).
Prints "webhdfs-fake listening on 127.0.0.1:PORT" once it listens.
"""

import argparse
import json
import os
import shutil
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

PREFIX = "/webhdfs/v1"


class Fail(Exception):
    def __init__(self, status, exc, java, msg):
        super().__init__(msg)
        self.status, self.exc, self.java, self.msg = status, exc, java, msg


def not_found(path):
    return Fail(404, "FileNotFoundException", "java.io.FileNotFoundException",
                "File does not exist: " + path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhdfs-fake/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("webhdfs-fake: " + (fmt % args) + "\n")

    # --- plumbing ---------------------------------------------------------

    def send(self, status, body=b"", ctype="application/json", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, headers=()):
        self.send(status, json.dumps(obj).encode(), headers=headers)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def local(self, hpath):
        """HDFS absolute path -> a path under --root (never outside it)."""
        norm = os.path.normpath("/" + hpath.lstrip("/"))
        return os.path.join(self.server.root, norm.lstrip("/")), norm

    def status_of(self, lpath, suffix):
        st = os.stat(lpath)
        isdir = os.path.isdir(lpath)
        return {
            "accessTime": int(st.st_atime * 1000), "blockSize": 134217728,
            "childrenNum": len(os.listdir(lpath)) if isdir else 0,
            "fileId": st.st_ino, "group": "supergroup",
            "length": 0 if isdir else st.st_size,
            "modificationTime": int(st.st_mtime * 1000), "owner": "hdfs",
            "pathSuffix": suffix, "permission": "755" if isdir else "644",
            "replication": 0 if isdir else 1, "storagePolicy": 0,
            "type": "DIRECTORY" if isdir else "FILE",
        }

    # --- dispatch ---------------------------------------------------------

    def handle_any(self):
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        body = self.read_body() if self.command in ("PUT", "POST") else b""
        try:
            if not u.path.startswith(PREFIX):
                raise Fail(404, "IllegalArgumentException",
                           "java.lang.IllegalArgumentException", "not a WebHDFS path")
            if self.server.user is not None and q.get("user.name") != self.server.user:
                raise Fail(403, "SecurityException", "java.lang.SecurityException",
                           "user.name=%r is not allowed" % q.get("user.name"))
            hpath = unquote(u.path[len(PREFIX):]) or "/"
            op = q.get("op", "").upper()
            fn = getattr(self, "op_%s_%s" % (self.command, op), None)
            if fn is None:
                raise Fail(400, "IllegalArgumentException",
                           "java.lang.IllegalArgumentException",
                           "Invalid value for webhdfs parameter \"op\": %s %s" % (self.command, op))
            fn(hpath, q, body, u)
        except Fail as f:
            self.send_json(f.status, {"RemoteException": {
                "exception": f.exc, "javaClassName": f.java, "message": f.msg}})

    do_GET = do_PUT = do_POST = do_DELETE = handle_any

    def redirect(self, u, q):
        host = "127.0.0.1:%d" % self.server.server_address[1]
        return "http://%s%s?%s&datanode=true" % (host, quote(u.path), u.query)

    # --- operations -------------------------------------------------------

    def op_PUT_CREATE(self, hpath, q, body, u):
        lpath, norm = self.local(hpath)
        overwrite = q.get("overwrite", "false").lower() == "true"
        if os.path.isdir(lpath):
            raise Fail(403, "FileAlreadyExistsException",
                       "org.apache.hadoop.fs.FileAlreadyExistsException", norm + " is a directory")
        if os.path.exists(lpath) and not overwrite:
            raise Fail(403, "FileAlreadyExistsException",
                       "org.apache.hadoop.fs.FileAlreadyExistsException",
                       "File %s already exists" % norm)
        if q.get("datanode") != "true":
            # The NameNode step: it never takes the data.
            self.send(307, headers=[("Location", self.redirect(u, q))])
            return
        os.makedirs(os.path.dirname(lpath), exist_ok=True)
        with open(lpath, "wb") as f:
            f.write(body)
        self.send(201, headers=[("Location", "hdfs://fake" + norm)])

    def op_POST_APPEND(self, hpath, q, body, u):
        lpath, norm = self.local(hpath)
        if not os.path.isfile(lpath):
            raise not_found(norm)
        if q.get("datanode") != "true":
            self.send(307, headers=[("Location", self.redirect(u, q))])
            return
        with open(lpath, "ab") as f:
            f.write(body)
        self.send(200)

    def op_GET_OPEN(self, hpath, q, body, u):
        lpath, norm = self.local(hpath)
        if not os.path.isfile(lpath):
            raise not_found(norm)
        if q.get("datanode") != "true":
            loc = self.redirect(u, q)
            if q.get("noredirect", "false").lower() == "true":
                self.send_json(200, {"Location": loc})
            else:
                self.send(307, headers=[("Location", loc)])
            return
        size = os.path.getsize(lpath)
        off = int(q.get("offset") or 0)
        if off < 0 or off > size:
            raise Fail(403, "IOException", "java.io.IOException",
                       "Offset=%d out of the range [0, %d]" % (off, size))
        n = size - off
        if q.get("length"):
            n = min(n, int(q["length"]))
        with open(lpath, "rb") as f:
            f.seek(off)
            data = f.read(n)
        self.send(200, data, ctype="application/octet-stream")

    def op_GET_GETFILESTATUS(self, hpath, q, body, u):
        lpath, norm = self.local(hpath)
        if not os.path.exists(lpath):
            raise not_found(norm)
        self.send_json(200, {"FileStatus": self.status_of(lpath, "")})

    def op_GET_LISTSTATUS(self, hpath, q, body, u):
        lpath, norm = self.local(hpath)
        if not os.path.exists(lpath):
            raise not_found(norm)
        if os.path.isdir(lpath):
            sts = [self.status_of(os.path.join(lpath, n), n) for n in sorted(os.listdir(lpath))]
        else:
            sts = [self.status_of(lpath, "")]
        self.send_json(200, {"FileStatuses": {"FileStatus": sts}})

    def op_DELETE_DELETE(self, hpath, q, body, u):
        lpath, norm = self.local(hpath)
        if norm == "/" or not os.path.lexists(lpath):
            self.send_json(200, {"boolean": False})
            return
        if os.path.isdir(lpath):
            if os.listdir(lpath) and q.get("recursive", "false").lower() != "true":
                raise Fail(403, "PathIsNotEmptyDirectoryException",
                           "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
                           "`%s is non empty': Directory is not empty" % norm)
            shutil.rmtree(lpath)
        else:
            os.unlink(lpath)
        self.send_json(200, {"boolean": True})

    def op_PUT_RENAME(self, hpath, q, body, u):
        src, _ = self.local(hpath)
        dest = q.get("destination", "")
        if not dest.startswith("/"):
            raise Fail(400, "IllegalArgumentException", "java.lang.IllegalArgumentException",
                       "Invalid value for webhdfs parameter \"destination\": " + dest)
        dst, _ = self.local(dest)
        ok = (os.path.lexists(src) and not os.path.lexists(dst)
              and os.path.isdir(os.path.dirname(dst)))
        if ok:
            os.rename(src, dst)
        self.send_json(200, {"boolean": ok})

    def op_PUT_MKDIRS(self, hpath, q, body, u):
        lpath, norm = self.local(hpath)
        if os.path.isfile(lpath):
            raise Fail(403, "FileAlreadyExistsException",
                       "org.apache.hadoop.fs.FileAlreadyExistsException", norm + " is a file")
        os.makedirs(lpath, exist_ok=True)
        self.send_json(200, {"boolean": True})


def main():
    ap = argparse.ArgumentParser(description="WebHDFS protocol fake (tests only)")
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.root, exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.root = os.path.abspath(a.root)
    srv.user = a.user
    srv.verbose = a.verbose
    print("webhdfs-fake listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
