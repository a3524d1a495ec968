"""Exit 0 when the Kafka broker at HOST:PORT answers a Metadata request listing a live broker.

Usage: python3 ready.py HOST PORT [NODE_ID]. With NODE_ID (a node of a cluster), that node itself
must be among the live brokers: a restarted node's port answers with its peers' metadata before
it has registered and caught up. Standard library only, so start.sh can run it on a fresh machine
before any virtualenv exists. An open port alone is not enough: a KRaft broker binds its listener
before it has caught up with the metadata log, and a fenced broker is missing from the broker list.
Metadata v4 (non-flexible) is served by Kafka 1.0 up to 4.x.
"""

from __future__ import annotations

import socket
import struct
import sys


def _exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        data += chunk
    return data


def brokers(host: str, port: int) -> tuple[list[int], int]:
    """(the live brokers' ids, controller id) from a Metadata v4 request for no topics."""
    client_id = b"survey-infra-ready"
    header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id  # Metadata, v4, corr id 1
    body = struct.pack(">i?", 0, False)  # no topics, do not auto-create
    request = header + body
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.settimeout(2)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _exact(sock, 4))
        payload = _exact(sock, size)
    # correlation_id, throttle_time_ms, then the broker array
    _corr, _throttle, count = struct.unpack_from(">iii", payload, 0)
    pos = 12
    ids = []
    for _ in range(count):
        ids.append(struct.unpack_from(">i", payload, pos)[0])
        pos += 4  # node_id
        (host_len,) = struct.unpack_from(">h", payload, pos)
        pos += 2 + host_len + 4  # host, port
        (rack_len,) = struct.unpack_from(">h", payload, pos)
        pos += 2 + max(rack_len, 0)
    (cluster_len,) = struct.unpack_from(">h", payload, pos)
    pos += 2 + max(cluster_len, 0)
    (controller,) = struct.unpack_from(">i", payload, pos)
    return ids, controller


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    node = int(sys.argv[3]) if len(sys.argv) > 3 else None
    try:
        ids, controller = brokers(host, port)
    except (OSError, struct.error) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    if not ids or controller < 0 or (node is not None and node not in ids):
        print(f"not ready: live brokers {ids}, controller {controller}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
