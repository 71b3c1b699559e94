"""cocotb bench: the simulated board on a TCP socket, so that the unmodified host code
(:mod:`slimgen.host`, over pyserial's ``socket://127.0.0.1:PORT``) talks to the UART bridge.

Bytes that arrive on the socket are bit-banged into ``rx`` at the bridge's divisor; frames on
``tx`` are decoded and sent back on the socket. One client at a time; a new connection replaces
the old one (each ``classify`` opens and closes its port). The server listens on 127.0.0.1 only,
on a port the system picks.

Environment: ``SLIMGEN_TB_DIVISOR`` (clock cycles per bit), ``SLIMGEN_TB_PORT_FILE`` (where the
bench writes its TCP port once it listens), ``SLIMGEN_TB_STOP_FILE`` (the bench ends when this
file exists), ``SLIMGEN_TB_SECONDS`` (wall-clock limit; the bench fails when it is reached).
"""

import os
import select
import socket
import time

import cocotb
from cocotb.triggers import Timer

from slimgen.sim.streams import CLOCK_NS, bench_file, start_clock_and_reset
from slimgen.sim.uart_bridge_tb import SerialHost
from slimgen.sw.artifact import write_bytes_atomic


class TCPLine:
    """The client connection, if any; replies go to whichever client is connected."""

    def __init__(self):
        self.conn = None

    def attach(self, conn):
        self.close()
        conn.settimeout(5.0)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, data):
        if self.conn is not None:
            try:
                self.conn.sendall(data)
            except OSError:
                self.close()


async def forward_tx(host, line, log):
    """Decode every byte the board sends and pass it to the client."""
    while True:
        data = await host.recv(1, timeout_bits=1 << 40)
        log.debug("board -> host %s", data.hex())
        line.send(data)


@cocotb.test()
async def board_on_tcp(dut):
    """Serve the UART bridge on 127.0.0.1 until the stop file appears."""
    divisor = int(os.environ["SLIMGEN_TB_DIVISOR"])
    port_file, stop_file = bench_file("SLIMGEN_TB_PORT_FILE"), bench_file("SLIMGEN_TB_STOP_FILE")
    deadline = time.monotonic() + float(os.environ.get("SLIMGEN_TB_SECONDS", "120"))
    host, line = SerialHost(dut, divisor), TCPLine()
    byte_ns = 10 * divisor * CLOCK_NS
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    dut.rx.value = 1
    await start_clock_and_reset(dut)
    cocotb.start_soon(forward_tx(host, line, dut._log))
    write_bytes_atomic(port_file, str(server.getsockname()[1]).encode())
    clients = received = 0
    try:
        while not os.path.exists(stop_file):
            assert time.monotonic() < deadline, \
                f"no stop file after {os.environ.get('SLIMGEN_TB_SECONDS', '120')} s"
            idle = dut.busy.value == 0 and dut.tx.value == 1
            watch = [server] + ([line.conn] if line.conn is not None else [])
            ready, _, _ = select.select(watch, [], [], 0.002 if idle else 0)
            if server in ready:
                conn, _ = server.accept()
                line.attach(conn)
                clients += 1
                continue
            if line.conn is not None and line.conn in ready:
                data = line.conn.recv(4096)
                if not data:
                    line.close()
                    continue
                received += len(data)
                await host.send(data)
            else:
                await Timer(byte_ns, unit="ns")
    finally:
        line.close()
        server.close()
    dut._log.info("served %d connections, %d bytes from the host", clients, received)
