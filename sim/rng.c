/* RNG streams keyed by (seed, purpose, id) on GSL's taus2 generator. The key, not the thread,
 * decides the stream, so results are identical for any thread or rank count. */
#include "sim/core.h"

uint64_t sb_rng_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* gsl's taus2 state layout (gsl/rng/taus.c): three unsigned longs s1 > 1, s2 > 7, s3 > 15,
 * each holding 32 bits. Setting them directly from the hash uses 96 bits of key entropy
 * instead of the 32 that gsl_rng_set's LCG seeding would. */
typedef struct { unsigned long s1, s2, s3; } taus_state;

void sb_rng_reseed(gsl_rng *r, uint64_t seed, uint32_t purpose, uint64_t id) {
  uint64_t h = sb_rng_mix64(seed ^ sb_rng_mix64(((uint64_t)purpose << 32) ^ sb_rng_mix64(id)));
  uint64_t a = sb_rng_mix64(h), b = sb_rng_mix64(h + 1);
  taus_state *s = gsl_rng_state(r);
  s->s1 = (unsigned long)(a & 0xffffffffUL);
  s->s2 = (unsigned long)(a >> 32);
  s->s3 = (unsigned long)(b & 0xffffffffUL);
  if (s->s1 < 2) s->s1 += 2;
  if (s->s2 < 8) s->s2 += 8;
  if (s->s3 < 16) s->s3 += 16;
  /* warm up, as gsl's taus_set does, so nearby keys decorrelate */
  for (int i = 0; i < 6; i++) gsl_rng_get(r);
}

int sb_rng_state_valid(const void *state, size_t size) {
  if (size != sizeof(taus_state)) return 0;
  const taus_state *s = state;
  return s->s1 > 1 && s->s2 > 7 && s->s3 > 15 && s->s1 <= 0xffffffffUL && s->s2 <= 0xffffffffUL && s->s3 <= 0xffffffffUL;
}

gsl_rng *sb_rng_alloc(uint64_t seed, uint32_t purpose, uint64_t id) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
  if (!r) {
    SB_SET_ERROR(SB_ENOMEM, "out of memory allocating an RNG stream");
    return NULL;
  }
  sb_rng_reseed(r, seed, purpose, id);
  return r;
}
