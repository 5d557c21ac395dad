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

// func initState(s *state, key, nonce *[16]byte, c *[2][16]byte)
// sets S from the key, the nonce and C0, C1, then runs Update(nonce, key)
// ten times (the draft's Init).
TEXT ·initState(SB), NOSPLIT, $0-32
	MOVQ  s+0(FP), AX
	MOVQ  key+8(FP), BX
	MOVQ  nonce+16(FP), SI
	MOVQ  c+24(FP), DX
	MOVOU 0(BX), X12  // key
	MOVOU 0(SI), X13  // nonce
	MOVOU 0(DX), X14  // C0
	MOVOU 16(DX), X15 // C1
	MOVO  X12, X0
	PXOR  X13, X0     // S0 = key ^ nonce
	MOVO  X15, X1     // S1 = C1
	MOVO  X14, X2     // S2 = C0
	MOVO  X15, X3     // S3 = C1
	MOVO  X0, X4      // S4 = key ^ nonce
	MOVO  X12, X5
	PXOR  X14, X5     // S5 = key ^ C0
	MOVO  X12, X6
	PXOR  X15, X6     // S6 = key ^ C1
	MOVO  X5, X7      // S7 = key ^ C0
	MOVQ  $10, CX

initLoop:
	MOVO X13, X8
	MOVO X12, X9
	UPDATE
	DECQ CX
	JNZ  initLoop
	STORE_STATE
	RET

// func finalizeState(s *state, lens, tag *[16]byte)
// runs Update(t, t) seven times with t = S2 ^ lens and writes the tag
// S0 ^ … ^ S6 (the draft's Finalize, 128-bit tag). The state is spent.
TEXT ·finalizeState(SB), NOSPLIT, $0-24
	MOVQ  s+0(FP), AX
	MOVQ  lens+8(FP), BX
	MOVQ  tag+16(FP), DI
	LOAD_STATE
	MOVOU 0(BX), X12
	PXOR  X2, X12
	MOVQ  $7, CX

finalLoop:
	MOVO X12, X8
	MOVO X12, X9
	UPDATE
	DECQ CX
	JNZ  finalLoop
	PXOR  X1, X0
	PXOR  X2, X0
	PXOR  X3, X0
	PXOR  X4, X0
	PXOR  X5, X0
	PXOR  X6, X0
	MOVOU X0, 0(DI)
	RET
