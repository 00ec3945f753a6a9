/* RFC 3550 receive statistics of one RTP source: see rtp-quality.h. */
#include "rtp-quality.h"

#include <string.h>

#define SEQ_MOD (1u << 16)

/* A.1 init_seq: a sequence starts (again) at seq. */
static void init_seq(RtpQuality *q, uint16_t seq) {
  q->base_seq = seq;
  q->max_seq = seq;
  q->bad_seq = SEQ_MOD + 1; /* so seq == bad_seq is false */
  q->cycles = 0;
  q->received = 0;
  memset(q->seen, 0, sizeof q->seen);
}

static uint64_t ext_max(const RtpQuality *q) { return (uint64_t)q->cycles + q->max_seq; }

static uint64_t current_expected(const RtpQuality *q) {
  return q->started ? ext_max(q) - q->base_seq + 1 : 0;
}

void rtpq_init(RtpQuality *q, uint32_t ssrc, uint32_t clock_rate) {
  memset(q, 0, sizeof *q);
  q->ssrc = ssrc;
  q->clock_rate = clock_rate;
  q->probation = RTPQ_MIN_SEQUENTIAL;
  q->bad_seq = SEQ_MOD + 1;
}

/* A.8: J += (|D(i-1,i)| - J) / 16, D from the change in transit time, in timestamp units. */
static void update_jitter(RtpQuality *q, uint32_t rtp_ts, uint64_t arrival_us) {
  /* arrival in timestamp units; uint32 arithmetic wraps like the RTP timestamp does */
  uint32_t arrival = (uint32_t)((arrival_us * (uint64_t)q->clock_rate) / 1000000u);
  uint32_t transit = arrival - rtp_ts;
  if (q->have_transit) {
    int32_t d = (int32_t)(transit - q->transit);
    double ad = d < 0 ? -(double)d : (double)d;
    q->jitter += (ad - q->jitter) / 16.0;
  }
  q->transit = transit;
  q->have_transit = 1;
}

/* Remembers ext as received; 1 when it already was (a duplicate). */
static int seen_before(RtpQuality *q, uint64_t ext) {
  uint64_t *slot = &q->seen[ext % RTPQ_WINDOW];
  if (*slot == ext + 1) return 1;
  *slot = ext + 1;
  return 0;
}

void rtpq_packet(RtpQuality *q, uint16_t seq, uint32_t rtp_ts, uint64_t arrival_us) {
  q->last_arrival_us = arrival_us;
  if (!q->started) {
    /* A.1 probation: a source is valid after MIN_SEQUENTIAL packets in sequence. */
    if (q->probation < RTPQ_MIN_SEQUENTIAL && seq == (uint16_t)(q->max_seq + 1)) {
      if (--q->probation == 0) {
        init_seq(q, seq);
        q->started = 1;
        q->received = 1;
        seen_before(q, seq);
        update_jitter(q, rtp_ts, arrival_us);
        return;
      }
    } else {
      q->probation = RTPQ_MIN_SEQUENTIAL - 1;
    }
    q->max_seq = seq;
    return;
  }
  uint16_t udelta = (uint16_t)(seq - q->max_seq);
  uint64_t ext;
  if (udelta < RTPQ_MAX_DROPOUT) {
    /* in order, with a permissible gap (udelta 0 is the newest packet again) */
    if (seq < q->max_seq) q->cycles += SEQ_MOD;
    q->max_seq = seq;
    ext = ext_max(q);
  } else if (udelta <= SEQ_MOD - RTPQ_MAX_MISORDER) {
    /* a very large jump: a restarted sender once two packets agree */
    if (seq != q->bad_seq) {
      q->bad_seq = (seq + 1) & (SEQ_MOD - 1);
      return;
    }
    q->carried_expected += current_expected(q);
    q->carried_received += q->received;
    init_seq(q, seq);
    q->have_transit = 0;
    ext = seq;
  } else {
    /* behind the newest: a late (reordered) packet or a duplicate */
    uint64_t back = SEQ_MOD - udelta;
    if (back > ext_max(q) - q->base_seq) { /* from before this sequence began */
      q->out_of_order++;
      return;
    }
    ext = ext_max(q) - back;
    if (seen_before(q, ext)) {
      q->duplicates++;
      return;
    }
    q->out_of_order++;
    q->received++;
    update_jitter(q, rtp_ts, arrival_us);
    return;
  }
  if (seen_before(q, ext)) {
    q->duplicates++;
    return;
  }
  q->received++;
  update_jitter(q, rtp_ts, arrival_us);
}

uint64_t rtpq_expected(const RtpQuality *q) { return q->carried_expected + current_expected(q); }

uint64_t rtpq_received(const RtpQuality *q) { return q->carried_received + q->received; }

uint64_t rtpq_lost(RtpQuality *q) {
  uint64_t e = rtpq_expected(q), r = rtpq_received(q);
  uint64_t lost = e > r ? e - r : 0;
  if (lost > q->lost_reported) q->lost_reported = lost;
  return q->lost_reported;
}

double rtpq_jitter_seconds(const RtpQuality *q) { return q->clock_rate ? q->jitter / q->clock_rate : 0; }

int rtpq_parse(const uint8_t *b, unsigned long len, uint32_t *ssrc, uint16_t *seq, uint32_t *ts) {
  if (len < 12 || (b[0] >> 6) != 2) return -1;
  unsigned pt = b[1] & 0x7f;
  if (pt >= 72 && pt <= 76) return -1; /* RTCP SR..APP multiplexed on the port (RFC 5761) */
  *seq = (uint16_t)((b[2] << 8) | b[3]);
  *ts = ((uint32_t)b[4] << 24) | ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7];
  *ssrc = ((uint32_t)b[8] << 24) | ((uint32_t)b[9] << 16) | ((uint32_t)b[10] << 8) | b[11];
  return 0;
}
