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

const pkg = sigv4 ? 's3rver-sigv4' : 's3rver';
const S3rver = require(pkg);

// s3rver's delimited listing skips every directory below a common prefix
// before looking for keys, so a prefix that holds only deeper keys
// ("ds/imgs/" over "ds/imgs/class0/x.jpg") is never reported, unlike S3.
// List without the delimiter and group the keys here instead, as S3 does.
// A page is cut after MaxKeys keys and prefixes; s3rver derives the next
// continuation token from the page's last object, so a page is only
// marked truncated when it has one.
const FilesystemStore = require(`${pkg}/lib/stores/filesystem`);
const listObjects = FilesystemStore.prototype.listObjects;
FilesystemStore.prototype.listObjects = async function (bucket, options) {
  const { delimiter = '', prefix = '', maxKeys = Infinity } = options;
  if (!delimiter) return listObjects.call(this, bucket, options);
  const all = await listObjects.call(this, bucket, { ...options, delimiter: '', maxKeys: Infinity });
  const objects = [];
  const prefixes = new Set();
  let isTruncated = false;
  for (const object of all.objects) {
    const idx = object.key.slice(prefix.length).indexOf(delimiter);
    if (idx !== -1) {
      const common = object.key.slice(0, prefix.length + idx + delimiter.length);
      if (prefixes.has(common)) continue;
      if (objects.length + prefixes.size >= maxKeys) {
        isTruncated = objects.length > 0;
        break;
      }
      prefixes.add(common);
      continue;
    }
    if (objects.length + prefixes.size >= maxKeys) {
      isTruncated = objects.length > 0;
      break;
    }
    objects.push(object);
  }
  return { objects, commonPrefixes: [...prefixes].sort(), isTruncated };
};
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
