// SPDX-License-Identifier: Apache-2.0
// s3rver 3.7.1 for buckets of 100,000+ objects (issue 15): the same
// program, arguments and protocol as start.js (one line of JSON,
// {"port": N}, on stdout once it listens; it stops when its stdin closes),
// with a listing that costs what one page holds, not what the bucket holds.
//
//   node --openssl-legacy-provider start_scale.js --dir DIR [--port N] [--bucket NAME]...
//        [--static-lists NAME]...
//
// Why: s3rver's own listing walks every file below the prefix and stats
// each (synchronously) for every page, so a 1,000-key page of a flat
// 100,000-key prefix costs ~1 s; start.js's delimited listing lists every
// key below the prefix and reads the metadata of each for every page, so a
// delimited LIST of "train/" over 100,000 keys in 500 folders ran 68 s and
// answered 500 InternalError (measured on 2 cores, 2026-12-03). Here a
// listing reads only the directories it needs (their entries cached while
// the directory's mtime stays), in S3's order (UTF-8 bytes), and reads
// what a listing shows (size, ETag, Last-Modified: the object file's stat
// and its .md5, as s3rver's getMetadata reads them) only for the objects
// on the page. What is answered is what S3 answers:
//   - keys under prefix, after start-after (or the continuation token,
//     which s3rver makes from the page's last object);
//   - with delimiter "/", a common prefix for each folder under prefix
//     holding at least one key after start-after, in key order among the
//     objects, each once; other delimiters go to start.js's way (every key
//     grouped here);
//   - a page is cut after MaxKeys objects and prefixes; as in start.js, a
//     page is marked truncated only when it holds an object (s3rver's
//     continuation token names the page's last object).
// Objects, reads, HEADs and writes are s3rver's, unchanged.
//
// --static-lists NAME (for benchmarks): bucket NAME does not change while
// the server runs, and its ListObjectsV2 requests (path-style, delimiter
// "" or "/") are answered from an index of every key made before the port
// is printed, each key's <Contents> rendered once: a page costs ~1 ms, as
// a LIST costs a real store little next to its round trip, instead of
// s3rver's ~150 ms per 1,000 keys one request at a time (its metadata
// reads and XML), which would be what a benchmark measured. The answer is
// S3's (KeyCount counts keys and prefixes; a page may end with a common
// prefix, and the continuation token goes on past it), byte for byte the
// elements s3rver writes. A write to such a bucket is refused (501), so
// the index cannot go stale.
'use strict';

const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
let dir = null;
let port = 0;
const buckets = [];
const staticLists = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--dir') dir = args[++i];
  else if (a === '--port') port = Number(args[++i]);
  else if (a === '--bucket') buckets.push({ name: args[++i] });
  else if (a === '--static-lists') staticLists.push(args[++i]);
  else {
    process.stderr.write(`start_scale.js: unknown argument ${a}\n`);
    process.exit(2);
  }
}
if (!dir) {
  process.stderr.write('start_scale.js: --dir DIR is required\n');
  process.exit(2);
}

const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Object = require('s3rver/lib/models/object');

const OBJECT_SUFFIX = '._S3rver_object';

// S3 orders keys by their UTF-8 bytes. JavaScript compares UTF-16 code
// units, which agrees with the bytes unless a string holds a character at
// or above U+D800 (a surrogate, or U+E000..U+FFFF).
const WIDE = /[\uD800-\uFFFF]/;
const cmp = (a, b) => {
  if (WIDE.test(a) || WIDE.test(b)) return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  return a < b ? -1 : a > b ? 1 : 0;
};

// A directory's entries in key order: {name, dir, sort} where sort is the
// object's name, or the folder's name + '/' (every key below it starts so).
const dirCache = new Map();
function entries(dirPath) {
  let st;
  try {
    st = fs.statSync(dirPath);
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
    throw err;
  }
  if (!st.isDirectory()) return [];
  const hit = dirCache.get(dirPath);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.ino === st.ino) return hit.list;
  const list = [];
  for (const d of fs.readdirSync(dirPath, { withFileTypes: true })) {
    if (d.isDirectory()) list.push({ name: d.name, dir: true, sort: d.name + '/' });
    else if (d.name.endsWith(OBJECT_SUFFIX)) {
      const name = d.name.slice(0, -OBJECT_SUFFIX.length);
      list.push({ name, dir: false, sort: name });
    }
  }
  list.sort((x, y) => cmp(x.sort, y.sort));
  dirCache.set(dirPath, { mtimeMs: st.mtimeMs, ino: st.ino, list });
  return list;
}

// Whether every key of entry e (full: its key, or its folder's prefix) is
// at or before `after`. Over a folder's sorted entries these come first.
function before(e, full, after) {
  if (!after) return false;
  if (e.dir) return cmp(full, after) < 0 && !after.startsWith(full);
  return cmp(full, after) <= 0;
}

// Whether entry `full` and every entry after it sort past every key that
// starts with prefix.
function beyond(full, prefix) {
  return cmp(full, prefix) > 0 && !full.startsWith(prefix);
}

// The index of the first entry of list (keys starting with kp) not before
// `after` (a binary search).
function firstAfter(list, kp, after) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(list[mid], kp + list[mid].sort, after)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Every key of the folder at dirPath (whose keys start with kp), in key
// order, from the first that is > after and starts with prefix.
function* keysBelow(dirPath, kp, prefix, after) {
  const list = entries(dirPath);
  for (let i = firstAfter(list, kp, after); i < list.length; i++) {
    const e = list[i];
    const full = kp + e.sort;
    if (beyond(full, prefix)) return;
    if (e.dir) {
      if (!full.startsWith(prefix) && !prefix.startsWith(full)) continue;
      yield* keysBelow(path.join(dirPath, e.name), full, prefix, after);
    } else if (full.startsWith(prefix)) {
      yield full;
    }
  }
}

// What a listing shows of an object (size, ETag, Last-Modified), as
// s3rver's getMetadata gives them, read synchronously (for small files
// ~10x faster than its three promises); undefined when it is gone.
// s3rver's own getMetadata when the .md5 file is missing (it makes one).
function listedMetadata(store, bucket, key) {
  const objectPath = store.getResourcePath(bucket, key, 'object');
  let stat;
  let md5;
  try {
    stat = fs.statSync(objectPath);
    md5 = fs.readFileSync(`${objectPath}.md5`).toString();
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    if (stat === undefined) return undefined;
    return store.getMetadata(bucket, key).catch(e => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
  }
  return {
    'content-type': 'binary/octet-stream',
    etag: JSON.stringify(md5),
    'last-modified': stat.mtime.toUTCString(),
    'content-length': stat.size,
  };
}

const listObjects = FilesystemStore.prototype.listObjects;
FilesystemStore.prototype.listObjects = async function (bucket, options) {
  const { delimiter = '', prefix = '', startAfter = '', maxKeys = Infinity } = options;
  if (delimiter && delimiter !== '/') {
    // start.js's way: every key, grouped here.
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
  }
  const bucketPath = this.getBucketPath(bucket);
  // The folder the prefix names (up to its last '/'); keys start with kp.
  const cut = prefix.lastIndexOf('/') + 1;
  const kp = prefix.slice(0, cut);
  const base = kp ? path.join(bucketPath, ...kp.split('/').filter(Boolean)) : bucketPath;
  const keys = [];
  const commonPrefixes = [];
  let isTruncated = false;
  const full = () => keys.length + commonPrefixes.length >= maxKeys;
  if (!delimiter) {
    for (const key of keysBelow(base, kp, prefix, startAfter)) {
      if (full()) {
        isTruncated = true;
        break;
      }
      keys.push(key);
    }
  } else {
    const list = entries(base);
    for (let i = firstAfter(list, kp, startAfter); i < list.length; i++) {
      const e = list[i];
      const name = kp + e.sort;
      if (beyond(name, prefix)) break;
      if (!name.startsWith(prefix)) continue;
      if (!e.dir) {
        if (full()) {
          isTruncated = keys.length > 0;
          break;
        }
        keys.push(name);
        continue;
      }
      // A common prefix when some key below it is after startAfter.
      const below = keysBelow(path.join(base, e.name), name, name, startAfter).next();
      if (below.done) continue;
      if (full()) {
        isTruncated = keys.length > 0;
        break;
      }
      commonPrefixes.push(name);
    }
  }
  const metadataArr = await Promise.all(keys.map(key => listedMetadata(this, bucket, key)));
  const objects = [];
  keys.forEach((key, i) => {
    if (metadataArr[i] !== undefined) objects.push(new S3Object(bucket, key, null, metadataArr[i]));
  });
  if (isTruncated && objects.length === 0) isTruncated = false;
  return { objects, commonPrefixes, isTruncated };
};

// ---------------------------------------------------------------- --static-lists

const xmlEscape = t =>
  t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

// {keys: [key], rows: [<Contents> xml]} of a bucket's directory, in key order.
function buildIndex(bucketPath) {
  const found = [];
  const walk = (dirPath, kp) => {
    for (const d of fs.readdirSync(dirPath, { withFileTypes: true })) {
      if (d.isDirectory()) {
        walk(path.join(dirPath, d.name), kp + d.name + '/');
      } else if (d.name.endsWith(OBJECT_SUFFIX)) {
        const p = path.join(dirPath, d.name);
        const st = fs.statSync(p);
        const md5 = fs.readFileSync(p + '.md5').toString();
        // As s3rver lists it: Last-Modified to the second (toUTCString).
        const mtime = new Date(Math.floor(st.mtimeMs / 1000) * 1000).toISOString();
        found.push([kp + d.name.slice(0, -OBJECT_SUFFIX.length), st.size, md5, mtime]);
      }
    }
  };
  if (fs.existsSync(bucketPath)) walk(bucketPath, '');
  found.sort((x, y) => cmp(x[0], y[0]));
  return {
    keys: found.map(f => f[0]),
    rows: found.map(
      ([key, size, md5, mtime]) =>
        `<Contents><Key>${xmlEscape(key)}</Key><LastModified>${mtime}</LastModified>` +
        `<ETag>&quot;${md5}&quot;</ETag><Size>${size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    ),
  };
}

// The first index whose key is > s (or >= s when inclusive).
function bound(keys, s, inclusive) {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const c = cmp(keys[mid], s);
    if (c < 0 || (c === 0 && !inclusive)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// The least string greater than every string that starts with p.
const pastPrefix = p => p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);

function listPage(ix, q) {
  const prefix = q.prefix || '';
  const delimiter = q.delimiter || '';
  const maxKeys = q['max-keys'] === undefined ? 1000 : Math.min(1000, Number(q['max-keys']));
  let after = q['start-after'] || '';
  if (q['continuation-token']) after = Buffer.from(q['continuation-token'], 'base64').toString('utf8');
  // Past a common prefix named by the token: none of its keys again.
  let i =
    delimiter && after.endsWith(delimiter) && after.startsWith(prefix)
      ? bound(ix.keys, pastPrefix(after), true)
      : bound(ix.keys, after, false);
  i = Math.max(i, bound(ix.keys, prefix, true));
  const contents = [];
  const prefixes = [];
  let last = null;
  let truncated = false;
  while (i < ix.keys.length) {
    const key = ix.keys[i];
    if (!key.startsWith(prefix)) break;
    const at = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    if (contents.length + prefixes.length >= maxKeys) {
      truncated = true;
      break;
    }
    if (at !== -1) {
      last = key.slice(0, at + delimiter.length);
      prefixes.push(`<CommonPrefixes><Prefix>${xmlEscape(last)}</Prefix></CommonPrefixes>`);
      i = bound(ix.keys, pastPrefix(last), true);
    } else {
      last = key;
      contents.push(ix.rows[i]);
      i++;
    }
  }
  const el = (tag, v) => (v === undefined || v === '' ? '' : `<${tag}>${xmlEscape(String(v))}</${tag}>`);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01/"><Name>${xmlEscape(q.bucket)}</Name>` +
    `<Prefix>${xmlEscape(prefix)}</Prefix>` +
    el('StartAfter', q['continuation-token'] ? undefined : q['start-after']) +
    el('ContinuationToken', q['continuation-token']) +
    el('NextContinuationToken', truncated ? Buffer.from(last, 'utf8').toString('base64') : undefined) +
    `<KeyCount>${contents.length + prefixes.length}</KeyCount><MaxKeys>${q['max-keys'] || 1000}</MaxKeys>` +
    el('Delimiter', delimiter) +
    `<IsTruncated>${truncated}</IsTruncated>` +
    contents.join('') +
    prefixes.join('') +
    '</ListBucketResult>'
  );
}

const indexes = new Map();

// Ahead of s3rver's own middleware: LISTs of a --static-lists bucket from
// its index, writes to it refused, everything else to s3rver.
function staticListsMiddleware() {
  return async (ctx, next) => {
    const m = /^\/([^/]+)\/?$/.exec(ctx.path) || /^\/([^/]+)\//.exec(ctx.path);
    const ix = m && indexes.get(m[1]);
    if (!ix) return next();
    if (!['GET', 'HEAD'].includes(ctx.method)) {
      ctx.status = 501;
      ctx.type = 'application/xml';
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code>' +
        '<Message>start_scale.js: this bucket is --static-lists (read-only)</Message></Error>';
      return undefined;
    }
    const listing = ctx.method === 'GET' && /^\/[^/]+\/?$/.test(ctx.path) && ctx.query['list-type'] === '2';
    const delimiter = ctx.query.delimiter || '';
    if (!listing || (delimiter !== '' && delimiter !== '/')) return next();
    ctx.status = 200;
    ctx.type = 'application/xml';
    ctx.body = listPage(ix, { ...ctx.query, bucket: m[1] });
    return undefined;
  };
}

for (const b of staticLists) {
  if (!buckets.some(x => x.name === b)) buckets.push({ name: b });
}

const server = new S3rver({
  address: '127.0.0.1',
  port,
  silent: true,
  directory: dir,
  serviceEndpoint: 'localhost',
  vhostBuckets: true,
  configureBuckets: buckets,
});

if (staticLists.length) {
  server.middleware.unshift(staticListsMiddleware());
  for (const b of staticLists) indexes.set(b, buildIndex(path.join(dir, b)));
}

server.run().then(
  addr => {
    process.stdout.write(JSON.stringify({ port: addr.port }) + '\n');
  },
  err => {
    process.stderr.write(`start_scale.js: ${err.stack || err}\n`);
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
