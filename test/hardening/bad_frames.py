"""Frame-level abuse from an independent client: one raw TCP connection per case, a hand-made
WebSocket handshake, one deliberately invalid frame, then the server's close frame, as JSON lines.

Frames are built with autobahn's own encoder (WebSocketProtocol.sendFrame, which "deliberately
allows to send invalid frames"), masked with autobahn's XOR masker; autobahn's UTF-8 validator
confirms that the "invalid UTF-8" payloads really are invalid and the valid ones valid. The socket,
the handshake and the reading of the answer are plain Python.

Run with Debian's interpreter, which sees apt's python3-autobahn:
    /usr/bin/python3 test/hardening/bad_frames.py HOST PORT MAX_PAYLOAD
"""

import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time

from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.utf8validator import Utf8Validator

READ_TIMEOUT = 3.0


class FrameSink:
    """Just enough of an autobahn protocol for its sendFrame: it collects the octets instead of writing."""

    class factory:  # noqa: N801 - the attribute name autobahn reads
        isServer = False

    class trafficStats:  # noqa: N801
        outgoingWebSocketFrames = 0

    logFrames = False
    applyMask = True

    def __init__(self, masked=True):
        self.maskClientFrames = masked
        self.out = b""

    def sendData(self, data, sync=False, chopsize=None):  # noqa: N802 - autobahn's name
        self.out += data


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True):
    sink = FrameSink(masked)
    WebSocketProtocol.sendFrame(sink, opcode=opcode, payload=payload, fin=fin, rsv=rsv)
    return sink.out


def valid_utf8(data):
    ok, _end_of_char, _consumed, _total = Utf8Validator().validate(data)
    return ok


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def handshake(host, port):
    sock = socket.create_connection((host, port), timeout=READ_TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws?room=abuse HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("closed during the handshake")
        raw += chunk
    head, rest = raw.split(b"\r\n\r\n", 1)
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        raise RuntimeError(f"handshake refused: {status!r}")
    accept = base64.b64encode(hashlib.sha1(key.encode() + WebSocketProtocol._WS_MAGIC).digest())
    if b"sec-websocket-accept: " + accept.lower() not in head.lower():
        raise RuntimeError("wrong Sec-WebSocket-Accept")
    return sock, rest


def read_frames(sock, buffered):
    """Server frames until a close frame or the end of the connection: (frames, tcp_closed)."""
    frames = []
    raw = buffered
    deadline = time.monotonic() + READ_TIMEOUT
    while True:
        while len(raw) >= 2:
            b0, b1 = raw[0], raw[1]
            length = b1 & 0x7F
            at = 2
            if length == 126:
                if len(raw) < 4:
                    break
                length = struct.unpack("!H", raw[2:4])[0]
                at = 4
            elif length == 127:
                if len(raw) < 10:
                    break
                length = struct.unpack("!Q", raw[2:10])[0]
                at = 10
            if b1 & 0x80:
                at += 4  # a server must not mask, but read past a mask if it did
            if len(raw) < at + length:
                break
            frames.append({"opcode": b0 & 0x0F, "fin": bool(b0 & 0x80), "payload": raw[at : at + length]})
            raw = raw[at + length :]
            if frames[-1]["opcode"] == 8:
                return frames, False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return frames, False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return frames, False
        except ConnectionError:
            return frames, True
        if not chunk:
            return frames, True
        raw += chunk


def cases(max_payload):
    bad_utf8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"
    assert not valid_utf8(bad_utf8), "the invalid UTF-8 sample must be invalid"
    overlong = b'{"type":"chat","text":"\xc0\xaf"}'
    assert not valid_utf8(overlong)
    good = b'{"type":"who"}'
    assert valid_utf8(good)
    big = b'{"type":"chat","text":"' + b"x" * max_payload + b'"}'
    half = b'{"type":"chat","text":"' + b"y" * (max_payload // 2 + 64)
    # (name, frames to send, expected close code). 1002 protocol error, 1007 invalid data, 1009 too large.
    return [
        ("a valid text frame, then a clean close (control case)", [frame(1, good), frame(8, close_payload(1000))], 1000),
        ("reserved opcode 0x3 (data)", [frame(3, b"x")], 1002),
        ("reserved opcode 0x7 (data)", [frame(7, b"")], 1002),
        ("reserved opcode 0xB (control)", [frame(0xB, b"x")], 1002),
        ("reserved opcode 0xF (control)", [frame(0xF, b"")], 1002),
        ("RSV1 set without an extension", [frame(1, good, rsv=4)], 1002),
        ("RSV2 set", [frame(1, good, rsv=2)], 1002),
        ("RSV3 set", [frame(1, good, rsv=1)], 1002),
        ("RSV bits on a ping", [frame(9, b"p", rsv=7)], 1002),
        ("invalid UTF-8 in a text frame", [frame(1, bad_utf8)], 1007),
        ("overlong UTF-8 encoding in a text frame", [frame(1, overlong)], 1007),
        ("invalid UTF-8 split over fragments", [frame(1, bad_utf8[:13], fin=False), frame(0, bad_utf8[13:])], 1007),
        ("ping with a 126-byte payload", [frame(9, b"p" * 126)], 1002),
        ("pong with a 200-byte payload", [frame(10, b"q" * 200)], 1002),
        ("close with a 126-byte payload", [frame(8, close_payload(1000, b"r" * 124))], 1002),
        ("fragmented ping (FIN clear)", [frame(9, b"p", fin=False)], 1002),
        ("fragmented close (FIN clear)", [frame(8, close_payload(1000), fin=False)], 1002),
        ("close code 999", [frame(8, close_payload(999))], 1002),
        ("close code 1004 (reserved)", [frame(8, close_payload(1004))], 1002),
        ("close code 1005 (never sent)", [frame(8, close_payload(1005))], 1002),
        ("close code 1006 (never sent)", [frame(8, close_payload(1006))], 1002),
        ("close code 1015 (never sent)", [frame(8, close_payload(1015))], 1002),
        ("close code 5000", [frame(8, close_payload(5000))], 1002),
        ("close frame with a 1-byte payload", [frame(8, b"\x03")], 1002),
        ("close reason in invalid UTF-8", [frame(8, close_payload(1000, b"\xff\xfe"))], 1007),
        ("unmasked text frame", [frame(1, good, masked=False)], 1002),
        ("unmasked ping", [frame(9, b"p", masked=False)], 1002),
        ("continuation with nothing to continue", [frame(0, b"x")], 1002),
        ("a new text frame inside a fragmented one", [frame(1, b'{"ty', fin=False), frame(1, b"x")], 1002),
        ("text frame over MAX_PAYLOAD", [frame(1, big)], 1009),
        ("fragments adding up to over MAX_PAYLOAD", [frame(1, half, fin=False), frame(0, half + b'"}')], 1009),
        # RFC 6455 5.2: the most significant bit of a 64-bit length must be 0; autobahn refuses to build it.
        ("64-bit length with the top bit set", [b"\x81\xff" + b"\xff" * 8 + b"\x00\x00\x00\x00"], [1002, 1009]),
    ]


def run_case(host, port, name, frames, expected):
    result = {"case": name, "expected": expected}
    try:
        sock, buffered = handshake(host, port)
    except Exception as err:  # noqa: BLE001 - reported as the case's outcome
        result["error"] = f"handshake: {err}"
        return result
    try:
        for f in frames:
            sock.sendall(f)
    except OSError as err:
        result["sendError"] = str(err)
    frames_in, tcp_closed = read_frames(sock, buffered)
    sock.close()
    closes = [f for f in frames_in if f["opcode"] == 8]
    result["textFrames"] = [f["payload"].decode("utf-8", "replace")[:120] for f in frames_in if f["opcode"] == 1]
    result["tcpClosedWithoutCloseFrame"] = tcp_closed and not closes
    if closes:
        payload = closes[0]["payload"]
        result["closeCode"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        result["closeReason"] = payload[2:].decode("utf-8", "replace")
    return result


def main():
    host, port, max_payload = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for name, frames, expected in cases(max_payload):
        print(json.dumps(run_case(host, port, name, frames, expected)), flush=True)


if __name__ == "__main__":
    main()
