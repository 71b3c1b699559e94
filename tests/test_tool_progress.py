"""What a running build says about itself: nextpnr's log read as it grows."""

from slimgen.boards.tool_progress import BuildProgress, read_phase

# Lines as nextpnr 0.x writes them (ECP5, router1 and router2; iCE40's utilisation).
PLACING = ["Info: Device utilisation:",
           "Info: \t          MULT18X18D:      48/    156    30%",
           "Info: \t        TRELLIS_COMB:   35121/  83640    41%",
           "Info: Creating initial analytic placement for 43781 cells, random placement wirelen = 1."]
ROUTER1 = ["Info: Routing 16361 arcs.",
           "Info:            |   (re-)routed arcs  |   delta    | remaining|       time spent     |",
           "Info:    IterCnt |  w/ripup   wo/ripup |  w/r  wo/r |      arcs| batch(sec) total(sec)|",
           "Info:       1000 |       58        941 |   58   941 |     15571|       1.18       1.18|",
           "Info:      10000 |     2095       7836 |  197   735 |      9151|       0.63       7.89|"]
ROUTER2 = ["Info:     iter=1 wires=1152659 overused=67939 overuse=80393 archfail=NA",
           "Info:     iter=46 wires=1226924 overused=144 overuse=144 archfail=NA"]


def test_the_phases_of_a_build_from_the_log():
    state = {}
    assert read_phase(state, ["Info: constraining clock net 'clk' to 25.00 MHz"]) == "placing"
    assert read_phase(state, PLACING) == "placing (35,121 of 83,640 TRELLIS_COMB)"
    assert read_phase(state, ROUTER1[:1]) == "routing: 16,361 of 16,361 arcs left"
    assert read_phase(state, ROUTER1[1:]) == "routing: 9,151 of 16,361 arcs left"
    assert read_phase(state, ["Info: Routing complete.", "Info: Max frequency for clock"]) == \
        "routing: 9,151 of 16,361 arcs left"     # until nextpnr says it has finished
    assert read_phase(state, ["Info: Program finished normally."]) == "packing the bitstream"
    assert read_phase({}, ROUTER2) == "routing: iteration 46, 144 wires overused"
    assert read_phase({}, ["Info: \t         ICESTORM_LC:  3344/  5280    63%"]) == \
        "placing (3,344 of 5,280 ICESTORM_LC)"


def test_progress_follows_the_log_as_it_grows(tmp_path):
    """Said when the phase changes, then once a minute while the news changes and every five
    minutes while it does not; a line nextpnr has not ended waits for its end; before the
    log exists yosys is running."""
    said, now = [], [0.0]
    log = tmp_path / "slimgen.tim"
    p = BuildProgress(log, said.append, clock=lambda: now[0])

    def at(seconds, text=None):
        """nextpnr has written ``text`` more by ``seconds``; the build polls."""
        if text is not None:
            with open(log, "a") as f:
                f.write(text)
        now[0] = seconds
        p.poll()

    at(0)
    at(240)                                  # the same news: every five minutes
    assert said == ["build: synthesizing (yosys) (0 min)"]
    at(300)
    assert said[-1] == "build: synthesizing (yosys) (5 min)"
    at(440, "\n".join(PLACING + ROUTER1[:4]) + "\nInfo:      10000 |     2095")
    assert said[-1] == "build: routing: 15,571 of 16,361 arcs left (7 min)"
    at(480, "       7836 |  197   735 |      9151|       0.63       7.89|\n")
    assert len(said) == 3                    # 40 s after the last: not yet
    at(515)
    assert said[-1] == "build: routing: 9,151 of 16,361 arcs left (9 min)"
    at(600)                                  # no new arcs routed: not within five minutes
    assert len(said) == 4
    at(601, "Info: Program finished normally.\n")
    assert said[-1] == "build: packing the bitstream (10 min)"


def test_the_minutes_count_from_the_build_start(tmp_path):
    """A second run of the tools (yosys again with abc9 -dff) goes on counting from the
    build's start, not from zero."""
    said = []
    BuildProgress(tmp_path / "slimgen.tim", said.append, clock=lambda: 200.0, start=80.0).poll()
    assert said == ["build: synthesizing (yosys) (2 min)"]
