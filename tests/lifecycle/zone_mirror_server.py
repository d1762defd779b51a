#!/usr/bin/env python3
"""A zone mirror for the tests: serves the files of DIR over HTTPS on loopback.

    zone_mirror_server.py --port N --cert CERT --key KEY --dir DIR

- ETag (a digest of the content) and Last-Modified (the file's mtime);
  If-None-Match / If-Modified-Since answer 304 Not Modified.
- gzip when the client accepts it (Content-Encoding: gzip).
- DIR/.mode, read at every request: "hang" accepts the request and never
  answers (a mirror that hangs); anything else serves normally.
- Every request is appended to DIR/requests.log: "PATH STATUS ENCODING".
The content is switched by replacing the files in DIR (atomically).
"""
import argparse
import email.utils
import gzip
import hashlib
import http.server
import os
import ssl
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    root = os.path.abspath(a.dir)
    log_lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the tests read requests.log
            pass

        def note(self, status, enc=""):
            with log_lock, open(os.path.join(root, "requests.log"), "a") as f:
                f.write("%s %d %s\n" % (self.path, status, enc or "-"))

        def do_GET(self):
            try:
                with open(os.path.join(root, ".mode")) as f:
                    mode = f.read().strip()
            except OSError:
                mode = "normal"
            if mode == "hang":
                self.note(0, "hang")
                time.sleep(3600)
                return
            name = os.path.normpath(self.path.split("?", 1)[0]).lstrip("/")
            path = os.path.join(root, name)
            if name.startswith("..") or name.startswith(".") or not os.path.isfile(path):
                self.note(404)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with open(path, "rb") as f:
                body = f.read()
            mtime = os.stat(path).st_mtime
            etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
            last_mod = email.utils.formatdate(mtime, usegmt=True)
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            fresh = False
            if inm is not None:
                fresh = inm.strip() == etag
            elif ims is not None:
                try:
                    fresh = int(mtime) <= email.utils.parsedate_to_datetime(ims).timestamp()
                except (TypeError, ValueError):
                    fresh = False
            if fresh:
                self.note(304)
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", last_mod)
                self.end_headers()
                return
            enc = ""
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                body = gzip.compress(body)
                enc = "gzip"
            self.note(200, enc)
            self.send_response(200)
            self.send_header("Content-Type", "text/dns")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_mod)
            if enc:
                self.send_header("Content-Encoding", enc)
            self.end_headers()
            self.wfile.write(body)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True  # a hanging request never holds up the exit

    srv = Server(("127.0.0.1", a.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
