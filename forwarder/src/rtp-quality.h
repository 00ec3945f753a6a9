/*
 * Receive-side stream quality of one RTP source (one SSRC), as RFC 3550
 * defines it: appendix A.1 (sequence validation, extended highest sequence
 * number), A.3 (packets expected and lost) and A.8 (interarrival jitter).
 * Plain functions on a struct, no locking: the caller owns the state.
 */
#ifndef RTP_QUALITY_H
#define RTP_QUALITY_H

#include <stdint.h>

/* A.1: a jump of up to MAX_DROPOUT ahead is loss; up to MAX_MISORDER behind is reordering. */
#define RTPQ_MAX_DROPOUT 3000
#define RTPQ_MAX_MISORDER 100
#define RTPQ_MIN_SEQUENTIAL 2
/* Remembered sequence numbers, to tell a duplicate from a late packet (>= MAX_MISORDER). */
#define RTPQ_WINDOW 128

typedef struct {
  uint32_t ssrc;
  uint32_t clock_rate; /* Hz of the RTP timestamp: 90000 video, 48000 Opus */
  /* A.1 */
  uint16_t max_seq;
  uint32_t cycles; /* shifted count of sequence number cycles */
  uint32_t base_seq;
  uint32_t bad_seq;
  uint32_t probation;
  int started; /* probation passed: the counts below describe a sequence */
  uint64_t received; /* distinct packets accepted since the last (re)start of the sequence */
  /* totals of earlier sequences (a sender restart re-bases the sequence) */
  uint64_t carried_expected, carried_received;
  uint64_t lost_reported; /* never decreases: a counter for Prometheus */
  uint64_t out_of_order, duplicates;
  /* A.8 */
  int have_transit;
  uint32_t transit;
  double jitter; /* in timestamp units */
  /* extended sequence numbers seen, slot = ext % RTPQ_WINDOW, 0 = empty (stored as ext + 1) */
  uint64_t seen[RTPQ_WINDOW];
  uint64_t last_arrival_us;
} RtpQuality;

void rtpq_init(RtpQuality *q, uint32_t ssrc, uint32_t clock_rate);

/* One packet of this source arrived at arrival_us (any monotonic microsecond clock). */
void rtpq_packet(RtpQuality *q, uint16_t seq, uint32_t rtp_ts, uint64_t arrival_us);

/* A.3: extended highest sequence number received minus the first, plus one (all sequences). */
uint64_t rtpq_expected(const RtpQuality *q);
/* Distinct packets received (duplicates not counted). */
uint64_t rtpq_received(const RtpQuality *q);
/* expected - received, clamped at 0 and never below an earlier answer. */
uint64_t rtpq_lost(RtpQuality *q);
/* A.8 jitter in seconds. */
double rtpq_jitter_seconds(const RtpQuality *q);

/*
 * Parses an RTP v2 header: 0 and the fields when `len` bytes hold one, -1 otherwise.
 * RTCP (payload types 200..204 with the marker bit) is not RTP.
 */
int rtpq_parse(const uint8_t *b, unsigned long len, uint32_t *ssrc, uint16_t *seq, uint32_t *ts);

#endif
