//go:build amd64

#include "textflag.h"

// The state S0…S7 lives in X0…X7 while a function runs. Go's AESENC
// takes the round key first: AESENC K, X sets X = AESRound(X, K).

#define LOAD_STATE \
	MOVOU 0(AX), X0 \
	MOVOU 16(AX), X1 \
	MOVOU 32(AX), X2 \
	MOVOU 48(AX), X3 \
	MOVOU 64(AX), X4 \
	MOVOU 80(AX), X5 \
	MOVOU 96(AX), X6 \
	MOVOU 112(AX), X7

#define STORE_STATE \
	MOVOU X0, 0(AX) \
	MOVOU X1, 16(AX) \
	MOVOU X2, 32(AX) \
	MOVOU X3, 48(AX) \
	MOVOU X4, 64(AX) \
	MOVOU X5, 80(AX) \
	MOVOU X6, 96(AX) \
	MOVOU X7, 112(AX)

// UPDATE is the draft's Update(M0, M1) with M0 in X8 and M1 in X9 (both
// clobbered, as is X10). New S_i is first computed in the register of
// S_(i-1), from S1 upwards, so each old block is still whole when it is
// last used as a round key; then the registers shift back.
#define UPDATE \
	PXOR X0, X8 \
	PXOR X4, X9 \
	MOVO X7, X10 \
	AESENC X8, X10 \
	AESENC X1, X0 \
	AESENC X2, X1 \
	AESENC X3, X2 \
	AESENC X9, X3 \
	AESENC X5, X4 \
	AESENC X6, X5 \
	AESENC X7, X6 \
	MOVO X6, X7 \
	MOVO X5, X6 \
	MOVO X4, X5 \
	MOVO X3, X4 \
	MOVO X2, X3 \
	MOVO X1, X2 \
	MOVO X0, X1 \
	MOVO X10, X0

// KEYSTREAM sets X10 = z0 = S1 ^ S6 ^ (S2 & S3) and
// X11 = z1 = S2 ^ S5 ^ (S6 & S7).
#define KEYSTREAM \
	MOVO X2, X10 \
	PAND X3, X10 \
	PXOR X1, X10 \
	PXOR X6, X10 \
	MOVO X6, X11 \
	PAND X7, X11 \
	PXOR X2, X11 \
	PXOR X5, X11

// func absorbBlocks(s *state, src *byte, n int)
TEXT ·absorbBlocks(SB), NOSPLIT, $0-24
	MOVQ s+0(FP), AX
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	LOAD_STATE
	TESTQ CX, CX
	JZ   absorbDone

absorbLoop:
	MOVOU 0(SI), X8
	MOVOU 16(SI), X9
	UPDATE
	ADDQ $32, SI
	DECQ CX
	JNZ  absorbLoop

absorbDone:
	STORE_STATE
	RET

// func encBlocks(s *state, dst, src *byte, n int)
TEXT ·encBlocks(SB), NOSPLIT, $0-32
	MOVQ s+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	LOAD_STATE
	TESTQ CX, CX
	JZ   encDone

encLoop:
	MOVOU 0(SI), X8
	MOVOU 16(SI), X9
	KEYSTREAM
	PXOR  X8, X10
	PXOR  X9, X11
	MOVOU X10, 0(DI)
	MOVOU X11, 16(DI)
	UPDATE
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  encLoop

encDone:
	STORE_STATE
	RET

// func decBlocks(s *state, dst, src *byte, n int)
TEXT ·decBlocks(SB), NOSPLIT, $0-32
	MOVQ s+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	LOAD_STATE
	TESTQ CX, CX
	JZ   decDone

decLoop:
	MOVOU 0(SI), X8
	MOVOU 16(SI), X9
	KEYSTREAM
	PXOR  X10, X8
	PXOR  X11, X9
	MOVOU X8, 0(DI)
	MOVOU X9, 16(DI)
	UPDATE
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  decLoop

decDone:
	STORE_STATE
	RET
