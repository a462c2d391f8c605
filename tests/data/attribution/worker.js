// A Node.js request worker for the attribution tests: each request builds a response (garbage)
// and a WorkerSession; in "leak" mode every session is kept for ever, in "clean" mode the last
// 500 only. Usage: node worker.js leak|clean REQUESTS_PER_SECOND
"use strict";

class WorkerSession {
  constructor(i) {
    this.id = i;
    this.started = Date.now();
    this.bytesIn = i * 3;
    this.bytesOut = i * 7;
    this.status = 200 + (i % 3);
    this.retries = i % 5;
    this.latency = (i % 97) / 10;
    this.shard = i % 16;
  }
}

const mode = process.argv[2];
const perSecond = Number(process.argv[3] || 1000);
const kept = [];
let i = 0;

function handle() {
  const body = JSON.stringify({ id: i, items: [1, 2, 3] });
  const s = new WorkerSession(i++);
  kept.push(s);
  if (mode !== "leak" && kept.length > 500) kept.shift();
  return body.length;
}

setInterval(() => {
  for (let k = 0; k < perSecond / 10; k++) handle();
}, 100);
