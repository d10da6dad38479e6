"""store, in Python (componentize-py): the last stage of examples/guests/polyglot.toml.

Keeps every record it receives in this component's storage, under "record/" followed by its
number (000001, 000002, ...), with the count under "count", both written in one atomic
batch, and logs each one. A request "count?" is answered with the count, as decimal text
(a "count?" sent without expecting a reply is only logged); a request "read PATH" reads that
file, which a guest can only do in a directory the manifest grants it (`capabilities.dirs`):
the reply is "read N bytes: FIRST LINE", or "refused: ERROR" (with no grant, every path is
refused); any other request is stored like a record and answered with "stored #N".

Built by componentize-py against wit/switchyard.wit, world `guest`
(examples/guests/build.sh).
"""

from typing import Optional

from componentize_py_types import Result
from wit_world import exports
from wit_world.imports import logging, messaging, storage, types

COUNT = b"count"


def stored_count() -> int:
    value = storage.get(COUNT)
    return int(value) if value is not None else 0


def read_file(path: str) -> str:
    """Reads a file through WASI's filesystem: only granted directories are visible."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        logging.log(logging.Level.WARN, f"could not read {path}: {e}")
        return f"refused: {type(e).__name__}: {e.strerror or e}"
    first = data.split(b"\n", 1)[0].decode(errors="replace")
    return f"read {len(data)} bytes: {first}"


class Handler(exports.Handler):
    def handle_message(self, msg: types.Envelope) -> Optional[bytes]:
        # Storage errors raise Err(types.Error): raised on from here, the host's error becomes
        # the message's (it is dead-lettered with it).
        is_request = msg.message_type == types.MessageType.REQUEST
        if msg.payload == b"count?":
            count = stored_count()
            logging.log(logging.Level.INFO, f"asked for the count: {count}")
            return str(count).encode() if is_request else None
        if is_request and msg.payload.startswith(b"read "):
            return read_file(msg.payload[5:].decode(errors="replace")).encode()
        count = stored_count() + 1
        storage.batch(
            [
                storage.Write_Set((b"record/%06d" % count, msg.payload)),
                storage.Write_Set((COUNT, str(count).encode())),
            ]
        )
        record = msg.payload.decode(errors="replace")
        logging.log(logging.Level.INFO, f"{messaging.self_id()} kept record #{count}: {record}")
        return f"stored #{count}".encode() if is_request else None

    def handle_callback(self, request_id: str, outcome: Result[types.Envelope, types.Error]) -> None:
        # store makes no requests: every callback is acknowledged.
        pass
