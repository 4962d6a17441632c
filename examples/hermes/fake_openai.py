#!/usr/bin/env python3
"""A tiny OpenAI-compatible chat server for driving hermes-agent offline.

Standard library only.  Usage: fake_openai.py [PORT]   (default 18080; 0 picks
a free port, which the "listening on" line on stderr names)

  GET  /v1/models              -> one model, "fake-model"
  POST /v1/chat/completions    -> a fixed reply; SSE chunks when "stream": true
  GET  /health, /v1/health     -> {"status":"ok"}

Every request line is logged to stderr, and the end of each streamed reply
("fake_openai: stream done, N chunks").  Set FAKE_OPENAI_LOG=FILE to also
append each request body (JSON) to FILE.  Set FAKE_OPENAI_CHUNK_DELAY=SECONDS
(default 0.02) to pace the streamed chunks: at 0.25 a reply takes about 8 s,
so a turn can be interrupted while it streams.
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fake-model"
REPLY = ("Hello from the fake model! This reply is streamed in small pieces "
         "so that the terminal UI shows it token by token, exactly as a real "
         "OpenAI-compatible server would send it. The end.")
TOKENS = [w + " " for w in REPLY.split(" ")]
TOKENS[-1] = TOKENS[-1].rstrip()
CHUNK_DELAY = float(os.environ.get("FAKE_OPENAI_CHUNK_DELAY") or 0.02)
USAGE = {"prompt_tokens": 10, "completion_tokens": len(TOKENS),
         "total_tokens": 10 + len(TOKENS)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_openai: " + (fmt % args) + "\n")

    def _json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path.endswith("/models"):
            self._json(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 0,
                 "owned_by": "fake", "context_length": 131072}]})
        elif path.endswith("/health"):
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": {"message": "not found: " + self.path}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b"{}"
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            return self._json(400, {"error": {"message": "bad json"}})
        if os.environ.get("FAKE_OPENAI_LOG"):
            with open(os.environ["FAKE_OPENAI_LOG"], "a") as f:
                f.write(json.dumps({"path": self.path, "body": req}) + "\n")
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            return self._json(404, {"error": {"message": "not found: " + self.path}})
        cid, now = "chatcmpl-fake%d" % int(time.time() * 1000), int(time.time())
        model = req.get("model") or MODEL
        if not req.get("stream"):
            return self._json(200, {
                "id": cid, "object": "chat.completion", "created": now, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": REPLY}}],
                "usage": USAGE})
        # Streaming: SSE, close-delimited (no Content-Length, no chunked encoding).
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def chunk(delta, finish=None, usage=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": now,
                   "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage is not None:
                obj["choices"], obj["usage"] = [], usage
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.flush()

        try:
            chunk({"role": "assistant", "content": ""})
            for tok in TOKENS:
                chunk({"content": tok})
                time.sleep(CHUNK_DELAY)
            chunk({}, finish="stop")
            if (req.get("stream_options") or {}).get("include_usage"):
                chunk(None, usage=USAGE)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            sys.stderr.write("fake_openai: stream done, %d chunks\n" % len(TOKENS))
        except (BrokenPipeError, ConnectionResetError):
            sys.stderr.write("fake_openai: stream cut off by the client\n")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    sys.stderr.write("fake_openai: listening on http://127.0.0.1:%d/v1\n"
                     % srv.server_address[1])
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
