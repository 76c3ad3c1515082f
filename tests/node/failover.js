// kafkajs producing through faults: an idempotent producer (acks=-1) sends N records,
// ten per request and one request at a time, spread over the topic's partitions, and
// prints one line per record as its outcome is known:
//   A <seq> <partition> <offset>   acknowledged at that offset
//   U <seq> <error name>           the send failed after kafkajs's retries (outcome unknown)
// Record values are `<prefix>-<seq>` (the checker's ids). Exits 0 when every send has an
// outcome. Sends are spaced by <gap_ms> so that a fault lands mid-stream (workload shape,
// not synchronisation). Usage:
//   node failover.js <bootstrap,list> <topic> <partitions> <count> <prefix> <gap_ms>
const { Kafka, logLevel } = require('kafkajs');

const [brokers, topic, partitionsArg, countArg, prefix, gapArg] = process.argv.slice(2);
const partitions = Number(partitionsArg);
const count = Number(countArg);
const PER_SEND = 10;
const gap = Number(gapArg || 0);
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

(async () => {
  const kafka = new Kafka({
    clientId: 'gregor-kafkajs-failover',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    requestTimeout: 5000,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 2000 },
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let first = 0; first < count; first += PER_SEND) {
    const partition = (first / PER_SEND) % partitions;
    const seqs = [];
    for (let s = first; s < Math.min(first + PER_SEND, count); s++) seqs.push(s);
    const messages = seqs.map((s) => ({ value: `${prefix}-${s}`, partition }));
    try {
      const [meta] = await producer.send({ topic, acks: -1, messages });
      const base = Number(meta.baseOffset);
      seqs.forEach((s, i) => console.log(`A ${s} ${meta.partition} ${base + i}`));
    } catch (e) {
      seqs.forEach((s) => console.log(`U ${s} ${e.name || 'Error'}`));
    }
    if (gap > 0) await pause(gap);
  }
  await producer.disconnect();
})().catch((e) => {
  console.error('FAILED', e);
  process.exit(1);
});
