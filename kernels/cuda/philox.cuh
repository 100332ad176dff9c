// Philox4x32-10 counter-based random numbers (Salmon et al. 2011, SC'11), mirroring
// `neurotwin_models::rng` bit for bit. Device functions only; no system headers (NVRTC).
#ifndef NEUROTWIN_PHILOX_CUH
#define NEUROTWIN_PHILOX_CUH

// Philox multipliers and Weyl key increments (Salmon et al. 2011, Table 2).
#define NT_PHILOX_M0 0xD2511F53u
#define NT_PHILOX_M1 0xCD9E8D57u
#define NT_PHILOX_W0 0x9E3779B9u
#define NT_PHILOX_W1 0xBB67AE85u

// 128 random bits (or a 128-bit counter), word 0 first.
struct nt_u32x4 {
    unsigned int w[4];
};

// Philox4x32 with 10 rounds: maps a 128-bit counter and a 64-bit key (k0, k1) to 128 random bits.
static __device__ __forceinline__ nt_u32x4 nt_philox4x32_10(nt_u32x4 c, unsigned int k0, unsigned int k1) {
    for (int round = 0; round < 10; ++round) {
        unsigned long long p0 = (unsigned long long)NT_PHILOX_M0 * (unsigned long long)c.w[0];
        unsigned long long p1 = (unsigned long long)NT_PHILOX_M1 * (unsigned long long)c.w[2];
        nt_u32x4 n;
        n.w[0] = (unsigned int)(p1 >> 32) ^ c.w[1] ^ k0;
        n.w[1] = (unsigned int)p1;
        n.w[2] = (unsigned int)(p0 >> 32) ^ c.w[3] ^ k1;
        n.w[3] = (unsigned int)p0;
        c = n;
        k0 += NT_PHILOX_W0;
        k1 += NT_PHILOX_W1;
    }
    return c;
}

// `CounterRng::bits`: 128 random bits for (neuron, step, draw) of a generator with 64-bit `seed` and stream
// word `stream` (stream id | sub-stream << 16). `draw` < 256 shares the counter word with the stream.
static __device__ __forceinline__ nt_u32x4 nt_rng_bits(unsigned long long seed, unsigned int stream,
                                                       unsigned int neuron, unsigned long long step,
                                                       unsigned int draw) {
    nt_u32x4 c;
    c.w[0] = (unsigned int)step;
    c.w[1] = (unsigned int)(step >> 32);
    c.w[2] = neuron;
    c.w[3] = stream ^ (draw << 8);
    return nt_philox4x32_10(c, (unsigned int)seed, (unsigned int)(seed >> 32));
}

// `u64_to_open_unit`: 64 random bits (hi, lo) to a double in the open interval (0, 1), 53 bits centred in
// their cell. Exact in IEEE-754 double: x < 2^53, and the scale is the power of two 2^-53.
static __device__ __forceinline__ double nt_u64_to_open_unit(unsigned int hi, unsigned int lo) {
    unsigned long long x = (((unsigned long long)hi << 32) | (unsigned long long)lo) >> 11;
    return __dmul_rn(__dadd_rn((double)x, 0.5), 1.0 / 9007199254740992.0);
}

#endif  // NEUROTWIN_PHILOX_CUH
