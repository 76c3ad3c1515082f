// kafkajs against a gregor broker: create a topic, produce 300 keyed records with a
// header, consume them in a consumer group, and read the group's committed offsets.
// Prints one JSON line; exits non-zero on any failure.
const { Kafka, logLevel } = require('kafkajs');

const broker = process.argv[2];
const N = 300;

(async () => {
  const kafka = new Kafka({ clientId: 'gregor-kafkajs', brokers: [broker], logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'kjs', numPartitions: 3 }] });
  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = 0; i < N; i++) messages.push({ key: 'k' + i, value: 'v' + i, headers: { h: 'x' } });
  await producer.send({ topic: 'kjs', messages });
  const consumer = kafka.consumer({ groupId: 'kjs-g' });
  await consumer.connect();
  await consumer.subscribe({ topic: 'kjs', fromBeginning: true });
  const got = [];
  let headersOk = true;
  await new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value.toString());
        headersOk = headersOk && message.headers.h.toString() === 'x';
        if (got.length === N) resolve();
      },
    });
  });
  await consumer.disconnect(); // commits what was consumed
  const offsets = await admin.fetchOffsets({ groupId: 'kjs-g', topics: ['kjs'] });
  const committed = offsets[0].partitions.reduce((sum, p) => sum + Number(p.offset), 0);
  console.log(JSON.stringify({ got: got.length, unique: new Set(got).size, headersOk, committed }));
  await producer.disconnect();
  await admin.disconnect();
})().catch((e) => {
  console.error('FAILED', e);
  process.exit(1);
});
