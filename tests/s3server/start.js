// SPDX-License-Identifier: Apache-2.0
// Starts an S3-compatible test server on 127.0.0.1 and prints one line of
// JSON ({"port": N}) on stdout once it listens. It stops when its stdin
// closes, so a test that dies never leaves a server behind.
//
//   node --openssl-legacy-provider start.js --dir DIR [--port N] [--sigv4]
//        [--bucket NAME]...
//
// --sigv4 runs @20minutes/s3rver, which verifies signatures (a wrong secret
// gets 403); the default is s3rver 3.7.1, which checks only the key id.
'use strict';

const args = process.argv.slice(2);
let dir = null;
let port = 0;
let sigv4 = false;
const buckets = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--dir') dir = args[++i];
  else if (a === '--port') port = Number(args[++i]);
  else if (a === '--sigv4') sigv4 = true;
  else if (a === '--bucket') buckets.push({ name: args[++i] });
  else {
    process.stderr.write(`start.js: unknown argument ${a}\n`);
    process.exit(2);
  }
}
if (!dir) {
  process.stderr.write('start.js: --dir DIR is required\n');
  process.exit(2);
}

const S3rver = require(sigv4 ? 's3rver-sigv4' : 's3rver');
const server = new S3rver({
  address: '127.0.0.1',
  port,
  silent: true,
  directory: dir,
  serviceEndpoint: 'localhost',
  vhostBuckets: true,
  configureBuckets: buckets,
});

server.run().then(
  (addr) => {
    process.stdout.write(JSON.stringify({ port: addr.port }) + '\n');
  },
  (err) => {
    process.stderr.write(`start.js: ${err.stack || err}\n`);
    process.exit(1);
  },
);

const stop = () => {
  server.close().finally(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
