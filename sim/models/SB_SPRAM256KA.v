// Simulation model of the iCE40UP5K single-port RAM, with the behaviour yosys' own model
// (techlibs/ice40/cells_sim.v) gives it: 16,384 words of 16 bits, contents undefined at power-up
// (a bitstream cannot initialise it), a registered read one cycle after the address, a write
// per nibble under MASKWREN, DATAOUT undefined after a write, 0 while asleep or powered off.
// sim/runner.py adds this file to a bench whose design instantiates SB_SPRAM256KA.
/* verilator lint_off MULTIDRIVEN */
module SB_SPRAM256KA (
    input [13:0] ADDRESS,
    input [15:0] DATAIN,
    input [3:0] MASKWREN,
    input WREN, CHIPSELECT, CLOCK, STANDBY, SLEEP, POWEROFF,
    output reg [15:0] DATAOUT
);
    reg [15:0] mem [0:16383];
    wire off = SLEEP || !POWEROFF;
    integer i;

    initial begin
        for (i = 0; i < 16384; i = i + 1)
            mem[i] = 16'bx;
    end

    always @(posedge CLOCK, posedge off) begin
        if (off) begin
            DATAOUT <= 16'b0;
        end else if (STANDBY) begin
            DATAOUT <= 16'bx;
        end else if (CHIPSELECT) begin
            if (!WREN) begin
                DATAOUT <= mem[ADDRESS];
            end else begin
                if (MASKWREN[0]) mem[ADDRESS][ 3: 0] <= DATAIN[ 3: 0];
                if (MASKWREN[1]) mem[ADDRESS][ 7: 4] <= DATAIN[ 7: 4];
                if (MASKWREN[2]) mem[ADDRESS][11: 8] <= DATAIN[11: 8];
                if (MASKWREN[3]) mem[ADDRESS][15:12] <= DATAIN[15:12];
                DATAOUT <= 16'bx;
            end
        end
    end
endmodule
/* verilator lint_on MULTIDRIVEN */
