// Written by leak-sentinel: summarises a V8 heap snapshot by constructor, one JSON line per
// site: {"site": "Session", "bytes": N, "objects": N} (self sizes; closures, strings, arrays and
// the engine's own objects grouped by kind), largest first.
"use strict";
const fs = require("fs");
const MAX_SITES = 20000;
const fd = fs.openSync(process.argv[2], fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
const snap = JSON.parse(fs.readFileSync(fd, "utf8"));
fs.closeSync(fd);
const meta = snap.snapshot.meta;
const fields = meta.node_fields;
const types = meta.node_types[0];
const width = fields.length;
const iType = fields.indexOf("type");
const iName = fields.indexOf("name");
const iSize = fields.indexOf("self_size");
const nodes = snap.nodes;
const strings = snap.strings;
const sites = new Map();
for (let i = 0; i < nodes.length; i += width) {
  const type = types[nodes[i + iType]];
  let site;
  if (type === "object" || type === "native") {
    site = strings[nodes[i + iName]] || "(anonymous object)";
  } else if (type === "closure") {
    site = "(closure) " + (strings[nodes[i + iName]] || "(anonymous)");
  } else {
    site = "(" + type + ")";
  }
  const v = sites.get(site) || [0, 0];
  v[0] += nodes[i + iSize];
  v[1] += 1;
  sites.set(site, v);
}
const out = [...sites.entries()].sort((a, b) => b[1][0] - a[1][0]).slice(0, MAX_SITES);
let text = "";
for (const [site, [bytes, objects]] of out) {
  text += JSON.stringify({ site, bytes, objects }) + "\n";
}
if (out.length === 0) text = '{"empty": true}\n';
process.stdout.write(text);
