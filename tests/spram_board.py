"""A fake serial port playing a board whose network takes its weights at run time (SPRAM),
shared by the protocol and host tests."""

import numpy as np

from slimgen.sw import uart_protocol as proto


class SpramBoard:
    """A pyserial-like port playing a board whose network takes its weights at run time: it
    answers INFER with the golden model's reply once exactly ``image`` is loaded, and with
    UNLOADED before. ``answer_load`` (the bytes that answer a whole LOAD) and ``forget`` (the
    board loses its weights after each LOAD, as if reset) play broken boards."""

    port = "fake0"

    def __init__(self, qmodel, image, *, answer_load=b"L", forget=False):
        self.qmodel, self.image = qmodel, bytes(image)
        self.answer_load, self.forget = answer_load, forget
        self.loaded, self.inbox, self.out, self.writes = None, b"", b"", []
        self.timeout, self.write_timeout = 2.0, 2.0
        self.timeouts_seen = set()   # (timeout, write_timeout) at each write

    def reset_input_buffer(self):
        self.out = b""

    def write(self, data):
        self.writes.append(bytes(data))
        self.timeouts_seen.add((self.timeout, self.write_timeout))
        self.inbox += bytes(data)
        n_in = proto.request_length(self.qmodel.n_inputs)
        n_load = proto.load_length(len(self.image))
        while self.inbox:
            if self.inbox[0] == proto.Command.INFER and len(self.inbox) >= n_in:
                x = proto.decode_request(self.inbox[:n_in], self.qmodel.n_inputs)
                self.inbox = self.inbox[n_in:]
                if self.loaded != self.image:
                    self.out += bytes([proto.Response.UNLOADED])
                else:
                    logits = self.qmodel(x[None])[0]
                    self.out += proto.encode_reply(int(np.argmax(logits)), logits)
            elif self.inbox[0] == proto.Command.LOAD and len(self.inbox) >= n_load:
                self.loaded = None if self.forget else \
                    proto.decode_load(self.inbox[:n_load], len(self.image))
                self.inbox = self.inbox[n_load:]
                self.out += self.answer_load
            else:
                break
        return len(data)

    def read(self, n):
        data, self.out = self.out[:n], self.out[n:]
        return data

    @property
    def loads(self):
        """The LOAD requests written, whole."""
        stream = b"".join(self.writes)
        n_in = proto.request_length(self.qmodel.n_inputs)
        out = []
        while stream:
            n = n_in if stream[0] == proto.Command.INFER else proto.load_length(len(self.image))
            if stream[0] == proto.Command.LOAD:
                out.append(stream[:n])
            stream = stream[n:]
        return out
