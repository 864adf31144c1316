#!/usr/bin/env node
// ort_timer.js - time an ONNX model with ONNX Runtime (npm onnxruntime-node,
// CPU), the ONNX peer of the benchmark (bench/bench.py); same command line
// and output as bench/libtorch_timer.cpp and bench/nncc_timer.c.
//
//   node ort_timer.js MODEL.onnx IN.npy... [--runs N] [--warmup W]
//                     [--threads T] [--times] [--ref OUT0.npy]
//
// The session has intraOpNumThreads T (default 1), interOpNumThreads 1,
// sequential execution and graphOptimizationLevel 'all'. The inputs
// (.npy: float32, float64, int64, int32, bool) feed session.inputNames in
// order. W untimed runs (default 5), then N timed session.run calls
// (default 50), awaited one by one. Prints
//   latency_ms min=X median=Y max=Z runs=N threads=T
//   times_ms t1 t2 ...                      (with --times)
//   node_hop_ms median=H                    (always)
//   max_abs_err E max_abs_ref R             (with --ref)
// node_hop_ms is the median cost of the event-loop hop onnxruntime-node's
// session.run adds around the native call (a Promise resolved from
// setImmediate), timed alone: part of the Node per-call overhead. --ref
// compares the first output of the first run with a float32 .npy.
//
// The package is found through NODE_PATH (bench/bench.sh installs it with
// `npm install --ignore-scripts onnxruntime-node` in its work folder).
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

// Reads a little-endian C-order .npy file: {type, dims, data}.
function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY')
    throw new Error(path + ': not a .npy file');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  if (hstart + hlen > buf.length) throw new Error(path + ': truncated');
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || /'fortran_order':\s*True/.test(header))
    throw new Error(path + ': unsupported header ' + header.trim());
  const dims = shape[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const kinds = {
    '<f4': ['float32', Float32Array, 4], '<f8': ['float64', Float64Array, 8],
    '<i8': ['int64', BigInt64Array, 8], '<i4': ['int32', Int32Array, 4],
    '|b1': ['bool', Uint8Array, 1],
  };
  const kind = kinds[descr[1]];
  if (!kind) throw new Error(path + ': unsupported dtype ' + descr[1]);
  const start = hstart + hlen, bytes = count * kind[2];
  if (buf.length - start < bytes) throw new Error(path + ': truncated data');
  // Copy into a fresh ArrayBuffer: the file's data may be misaligned.
  const ab = new ArrayBuffer(bytes);
  new Uint8Array(ab).set(buf.subarray(start, start + bytes));
  return { type: kind[0], dims, data: new kind[1](ab) };
}

function median(sorted) {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

async function main(argv) {
  let model = null, runs = 50, warmup = 5, threads = 1, times = false, ref = null;
  const inputs = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--times') times = true;
    else if (['--runs', '--warmup', '--threads', '--ref'].includes(a) && i + 1 < argv.length) {
      const v = argv[++i];
      if (a === '--runs') runs = parseInt(v, 10);
      else if (a === '--warmup') warmup = parseInt(v, 10);
      else if (a === '--threads') threads = parseInt(v, 10);
      else ref = v;
    } else if (model === null) model = a;
    else inputs.push(a);
  }
  if (model === null || !(runs >= 1) || !(threads >= 1) || !(warmup >= 0)) {
    process.stderr.write('usage: ort_timer.js MODEL.onnx IN.npy... [--runs N] [--warmup W] ' +
                         '[--threads T] [--times] [--ref OUT0.npy]\n');
    return 2;
  }
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  if (session.inputNames.length !== inputs.length)
    throw new Error(`the model has ${session.inputNames.length} inputs, ${inputs.length} given`);
  const feeds = {};
  session.inputNames.forEach((name, i) => {
    const a = readNpy(inputs[i]);
    feeds[name] = new ort.Tensor(a.type, a.data, a.dims);
  });

  const first = await session.run(feeds);
  for (let i = 1; i < warmup; i++) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = nowMs();
    await session.run(feeds);
    ms.push(nowMs() - t0);
  }
  if (times) console.log('times_ms ' + ms.map(t => t.toFixed(6)).join(' '));
  ms.sort((a, b) => a - b);
  console.log(`latency_ms min=${ms[0].toFixed(4)} median=${median(ms).toFixed(4)} ` +
              `max=${ms[ms.length - 1].toFixed(4)} runs=${runs} threads=${threads}`);

  const hops = [];
  for (let i = 0; i < 1000; i++) {
    const t0 = nowMs();
    await new Promise(resolve => setImmediate(() => resolve(null)));
    hops.push(nowMs() - t0);
  }
  hops.sort((a, b) => a - b);
  console.log(`node_hop_ms median=${median(hops).toFixed(5)}`);

  if (ref !== null) {
    const r = readNpy(ref);
    const got = first[session.outputNames[0]].data;
    if (got.length !== r.data.length) throw new Error(`output has ${got.length} elements, ` +
                                                      `reference ${r.data.length}`);
    let err = 0, big = 0;
    for (let i = 0; i < got.length; i++) {
      err = Math.max(err, Math.abs(Number(got[i]) - Number(r.data[i])));
      big = Math.max(big, Math.abs(Number(r.data[i])));
    }
    console.log(`max_abs_err ${err} max_abs_ref ${big}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(rc => { process.exitCode = rc; }, e => {
  process.stderr.write('ort_timer.js: error: ' + (e && e.message ? e.message : e) + '\n');
  process.exitCode = 1;
});
