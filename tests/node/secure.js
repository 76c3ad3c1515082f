// kafkajs over a secured listener: produce 20 records to a topic and read them back.
// argv: broker, topic, JSON options {ssl: {ca: "<pem path>"}, sasl: {mechanism, username,
// password}}. Prints one JSON line {got, unique} on success; on an authentication
// failure prints {error: "<kafkajs error name>"} and exits 2; any other failure exits 1.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [broker, topic, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson || '{}');
const N = 20;

(async () => {
  const config = { clientId: 'gregor-kafkajs-secure', brokers: [broker], logLevel: logLevel.NOTHING,
    retry: { retries: 0 }, connectionTimeout: 5000, authenticationTimeout: 5000 };
  if (options.ssl) config.ssl = { ca: [fs.readFileSync(options.ssl.ca, 'utf-8')], servername: 'localhost' };
  if (options.sasl) config.sasl = options.sasl;
  const kafka = new Kafka(config);
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < N; i++) messages.push({ value: 'v' + i });
  await producer.send({ topic, messages });
  const consumer = kafka.consumer({ groupId: topic + '-g' });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = [];
  await new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value.toString());
        if (got.length === N) resolve();
      },
    });
  });
  await consumer.disconnect();
  await producer.disconnect();
  console.log(JSON.stringify({ got: got.length, unique: new Set(got).size }));
})().catch((e) => {
  if (e.type === 'SASL_AUTHENTICATION_FAILED' || e.name === 'KafkaJSSASLAuthenticationError') {
    console.log(JSON.stringify({ error: e.name }));
    process.exit(2);
  }
  console.error('FAILED', e);
  process.exit(1);
});
