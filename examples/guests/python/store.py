"""store, in Python (componentize-py): the last stage of examples/guests/polyglot.toml.

Keeps every record it receives in this component's storage, under "record/" followed by its
number (000001, 000002, ...), with the count under "count", both written in one atomic
batch, and logs each one. A request "count?" is answered with the count, as decimal text
(a "count?" sent without expecting a reply is only logged); any other request is stored like
a record and answered with "stored #N".

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


class Handler(exports.Handler):
    def handle_message(self, msg: types.Envelope) -> Optional[bytes]:
        # Storage errors raise Err(types.Error): raised on from here, the host's error becomes
        # the message's (it is dead-lettered with it).
        is_request = msg.message_type == types.MessageType.REQUEST
        if msg.payload == b"count?":
            count = stored_count()
            logging.log(logging.Level.INFO, f"asked for the count: {count}")
            return str(count).encode() if is_request else None
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
