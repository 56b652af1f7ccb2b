// conformance.mjs URL --publish allowed|denied --topic TOPIC --ack-dir DIR
//
// Drives `colugo web` at URL with the reference client of the Foxglove
// WebSocket protocol (FoxgloveClient of @foxglove/ws-protocol, over a `ws`
// WebSocket), once per subprotocol, each time offering only that one. It
// expects the network of TestFoxgloveClientConformance: examples
// `publisher` (robot/pose, json), `protobuf pub` (robot/pose.pb) and
// `server` (math/add, json). It checks what a client can check alone and
// prints a JSON summary on stdout for the Go test to check the rest (the
// timestamps against the publishers' send times, what the colugo
// subscriber of TOPIC printed). Exit status 1, with the failures on stderr
// and in the summary, when a check fails.
//
// Client publishing: the client publishes {"from": SUBPROTOCOL, "n": i} on
// TOPIC every 50 ms until the file DIR/SUBPROTOCOL exists (the Go test
// makes it when its subscriber has printed one) or a bound passes: 15 s
// when publishing is allowed, 2 s when it is denied (then the file must
// not appear).
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import wsProtocol from "@foxglove/ws-protocol"; // CommonJS: no named exports in Node
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";
import WebSocket from "ws";

const { FoxgloveClient } = wsProtocol;
const SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"];
const POSE = "robot/pose";
const POSE_PB = "robot/pose.pb";
const ADD = "math/add";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    publish: { type: "string" },
    topic: { type: "string" },
    "ack-dir": { type: "string" },
  },
});
if (positionals.length !== 1 || !["allowed", "denied"].includes(opts.publish) || !opts.topic || !opts["ack-dir"]) {
  console.error("usage: node conformance.mjs URL --publish allowed|denied --topic TOPIC --ack-dir DIR");
  process.exit(2);
}
const url = positionals[0];
const allowed = opts.publish === "allowed";

const failures = [];

// Session is one connection: FoxgloveClient's events, recorded, and
// bounded waits on them.
class Session {
  constructor(subprotocol) {
    this.subprotocol = subprotocol;
    this.channels = new Map(); // id -> channel
    this.services = new Map(); // id -> service
    this.statuses = [];
    this.messages = new Map(); // subscription id -> [{ts, at, data}]
    this.responses = new Map(); // call id -> response
    this.callFailures = new Map(); // call id -> failure
    this.errors = [];
    this.waiters = new Set();
    this.ws = new WebSocket(url, [subprotocol]);
    this.client = new FoxgloveClient({ ws: this.ws });
    const c = this.client;
    c.on("open", () => { this.opened = true; this.poke(); });
    c.on("close", (ev) => { this.closed = ev; this.poke(); });
    c.on("error", (err) => { this.errors.push(String(err?.message ?? err)); this.poke(); });
    c.on("serverInfo", (info) => { this.serverInfo = info; this.poke(); });
    c.on("status", (s) => { this.statuses.push(s); this.poke(); });
    c.on("advertise", (chs) => { for (const ch of chs) this.channels.set(ch.id, ch); this.poke(); });
    c.on("unadvertise", (ids) => { for (const id of ids) this.channels.delete(id); this.poke(); });
    c.on("advertiseServices", (ss) => { for (const s of ss) this.services.set(s.id, s); this.poke(); });
    c.on("unadvertiseServices", (ids) => { for (const id of ids) this.services.delete(id); this.poke(); });
    c.on("message", (m) => {
      const at = BigInt(Date.now()) * 1000000n;
      const data = new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength).slice();
      if (!this.messages.has(m.subscriptionId)) this.messages.set(m.subscriptionId, []);
      this.messages.get(m.subscriptionId).push({ ts: m.timestamp, at, data });
      this.poke();
    });
    c.on("serviceCallResponse", (r) => { this.responses.set(r.callId, r); this.poke(); });
    c.on("serviceCallFailure", (f) => { this.callFailures.set(f.callId, f); this.poke(); });
  }

  poke() {
    for (const w of this.waiters) {
      const v = w.pred();
      if (v) {
        this.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(v);
      }
    }
  }

  // until resolves with pred's first truthy value, evaluated now and after
  // every event; it rejects after ms, naming what it waited for.
  until(what, ms, pred) {
    const v = pred();
    if (v) return Promise.resolve(v);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      this.waiters.add(w);
    });
  }

  channel(topic) {
    return [...this.channels.values()].find((ch) => ch.topic === topic);
  }

  service(name) {
    return [...this.services.values()].find((s) => s.name === name);
  }

  received(sid) {
    return this.messages.get(sid) ?? [];
  }

  errorStatuses() {
    return this.statuses.filter((s) => s.level === 2);
  }
}

// resolveRef follows a local "$ref" ("#/$defs/...") in schema root.
function resolveRef(root, s) {
  while (s && typeof s.$ref === "string") {
    if (!s.$ref.startsWith("#/")) throw new Error(`non-local $ref ${s.$ref}`);
    s = s.$ref.slice(2).split("/").reduce((o, k) => o?.[k], root);
  }
  if (!s) throw new Error("dangling $ref");
  return s;
}

// validate checks value against the subset of JSON Schema colugo
// generates (object, number, integer, string, boolean, array; required,
// additionalProperties false) and returns the problems.
function validate(root, schema, value, where = "value") {
  const s = resolveRef(root, schema);
  const problems = [];
  switch (s.type) {
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return [`${where}: not an object`];
      for (const k of s.required ?? []) if (!(k in value)) problems.push(`${where}: required ${k} missing`);
      for (const [k, v] of Object.entries(value)) {
        if (s.properties && k in s.properties) problems.push(...validate(root, s.properties[k], v, `${where}.${k}`));
        else if (s.additionalProperties === false) problems.push(`${where}: property ${k} not in the schema`);
      }
      break;
    }
    case "number":
      if (typeof value !== "number") problems.push(`${where}: ${JSON.stringify(value)} is not a number`);
      break;
    case "integer":
      if (!Number.isInteger(value)) problems.push(`${where}: ${JSON.stringify(value)} is not an integer`);
      break;
    case "string":
      if (typeof value !== "string") problems.push(`${where}: not a string`);
      break;
    case "boolean":
      if (typeof value !== "boolean") problems.push(`${where}: not a boolean`);
      break;
    case "array":
      if (!Array.isArray(value)) problems.push(`${where}: not an array`);
      else if (s.items) value.forEach((v, i) => problems.push(...validate(root, s.items, v, `${where}[${i}]`)));
      break;
    default:
      problems.push(`${where}: schema type ${JSON.stringify(s.type)} unknown to this checker`);
  }
  return problems;
}

// schemaProperties is the property names of a JSON Schema's object type.
function schemaProperties(root) {
  return Object.keys(resolveRef(root, root).properties ?? {}).sort();
}

const text = new TextDecoder();
const encode = (v) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));

async function runSession(subprotocol) {
  const s = new Session(subprotocol);
  const summary = { subprotocol };
  const check = (ok, msg) => {
    if (!ok) failures.push(`${subprotocol}: ${msg}`);
    return ok;
  };
  try {
    await s.until("the connection to open", 5000, () => s.opened || s.closed);
    if (!s.opened) throw new Error(`connection refused (${s.errors.join("; ") || "closed"})`);
    summary.protocol = s.ws.protocol;
    check(s.ws.protocol === subprotocol, `server chose subprotocol ${JSON.stringify(s.ws.protocol)}, offered only ${subprotocol}`);

    // serverInfo.
    const info = await s.until("serverInfo", 5000, () => s.serverInfo);
    summary.serverInfo = { name: info.name, capabilities: info.capabilities, supportedEncodings: info.supportedEncodings };
    check(info.name === "colugo", `serverInfo name ${JSON.stringify(info.name)}, want colugo`);
    check(info.capabilities.includes("services"), `capabilities ${info.capabilities} lack services`);
    check(info.capabilities.includes("clientPublish") === allowed,
      `capabilities ${info.capabilities}: clientPublish ${allowed ? "missing" : "present"} with publishing ${opts.publish}`);
    if (allowed) {
      check((info.supportedEncodings ?? []).includes("json"), `supportedEncodings ${info.supportedEncodings} lack json`);
    }

    // Channels, with their schemas.
    await s.until(`channels ${POSE} and ${POSE_PB}`, 20000, () => s.channel(POSE) && s.channel(POSE_PB));
    const jc = s.channel(POSE);
    const pc = s.channel(POSE_PB);
    summary.channels = {};
    for (const ch of [jc, pc]) {
      summary.channels[ch.topic] = { encoding: ch.encoding, schemaName: ch.schemaName, schemaEncoding: ch.schemaEncoding };
    }
    check(jc.encoding === "json", `${POSE} encoding ${jc.encoding}, want json`);
    check(jc.schemaEncoding === "jsonschema", `${POSE} schemaEncoding ${jc.schemaEncoding}, want jsonschema`);
    check(jc.schemaName === "examples.Pose", `${POSE} schemaName ${jc.schemaName}, want examples.Pose`);
    const poseSchema = JSON.parse(jc.schema);
    const props = schemaProperties(poseSchema);
    check(props.join() === "seq,theta,x,y", `${POSE} schema properties ${props}, want seq,theta,x,y`);
    check(pc.encoding === "protobuf", `${POSE_PB} encoding ${pc.encoding}, want protobuf`);
    check(pc.schemaEncoding === "protobuf", `${POSE_PB} schemaEncoding ${pc.schemaEncoding}, want protobuf`);
    check(pc.schemaName === "colugo.examples.Pose", `${POSE_PB} schemaName ${pc.schemaName}, want the full name colugo.examples.Pose`);
    // Node decodes base64url and unpadded input too: check it is standard.
    check(/^[A-Za-z0-9+/]*={0,2}$/.test(pc.schema) && pc.schema.length % 4 === 0, `${POSE_PB} schema is not standard base64`);
    const fds = descriptor.FileDescriptorSet.decode(Buffer.from(pc.schema, "base64"));
    const PoseType = protobuf.Root.fromDescriptor(fds).lookupType(pc.schemaName);
    summary.protobufFields = PoseType.fieldsArray.map((f) => `${f.name}:${f.type}`);

    // Subscribe to both; decode with the advertised schemas.
    const jsid = s.client.subscribe(jc.id);
    const psid = s.client.subscribe(pc.id);
    await s.until(`5 messages on each of ${POSE} and ${POSE_PB}`, 10000,
      () => s.received(jsid).length >= 5 && s.received(psid).length >= 5);
    summary.messages = { [POSE]: [], [POSE_PB]: [] };
    const checkTimes = (topic, msgs) => {
      let prev = 0n;
      for (const m of msgs) {
        const skew = Number(m.at - m.ts) / 1e6; // ms; the publisher is on this host
        check(Math.abs(skew) < 5000, `${topic}: timestamp ${m.ts} is ${skew} ms from the time it arrived (want nanoseconds, send time)`);
        check(m.ts > prev, `${topic}: timestamp ${m.ts} not after the previous ${prev}`);
        prev = m.ts;
      }
    };
    for (const m of s.received(jsid)) {
      const v = JSON.parse(text.decode(m.data));
      for (const p of validate(poseSchema, poseSchema, v)) check(false, `${POSE}: ${p}`);
      summary.messages[POSE].push({ key: v.seq, ts: m.ts.toString() });
    }
    for (const m of s.received(psid)) {
      const v = PoseType.toObject(PoseType.decode(m.data));
      check(v.frame === "map" && v.y === 2 && v.theta === 0.5 && Number.isInteger(v.x) && v.x > 0,
        `${POSE_PB}: decoded ${JSON.stringify(v)}, want {x: n, y: 2, theta: 0.5, frame: "map"}`);
      summary.messages[POSE_PB].push({ key: v.x, ts: m.ts.toString() });
    }
    checkTimes(POSE, s.received(jsid));
    checkTimes(POSE_PB, s.received(psid));

    // Services: a call, and calls that must fail (not hang).
    const svc = await s.until(`service ${ADD}`, 20000, () => s.service(ADD));
    check(svc.request?.encoding === "json" && svc.request?.schemaEncoding === "jsonschema",
      `${ADD} request ${JSON.stringify({ ...svc.request, schema: undefined })}, want json with a jsonschema`);
    const reqSchema = JSON.parse(svc.request.schema);
    const respSchema = JSON.parse(svc.response.schema);
    check(schemaProperties(reqSchema).join() === "a,b", `${ADD} request schema properties ${schemaProperties(reqSchema)}`);
    check(validate(reqSchema, reqSchema, { a: 2, b: 40 }).length === 0, `${ADD} request schema refuses {a: 2, b: 40}`);
    const call = (callId, encoding, body) => {
      s.client.sendServiceCallRequest({ serviceId: svc.id, callId, encoding, data: encode(body) });
      return s.until(`the answer to call ${callId}`, 10000, () => s.responses.get(callId) ?? s.callFailures.get(callId));
    };
    const r = await call(1, "json", { a: 2, b: 40 });
    if (check(r.op !== "serviceCallFailure", `call {a: 2, b: 40} failed: ${r.message}`)) {
      check(r.serviceId === svc.id && r.encoding === "json", `response serviceId ${r.serviceId} encoding ${r.encoding}`);
      const v = JSON.parse(text.decode(r.data));
      for (const p of validate(respSchema, respSchema, v)) check(false, `${ADD} response: ${p}`);
      summary.sum = v.sum;
      check(v.sum === 42, `2 + 40 = ${v.sum}`);
    }
    const bad = await call(2, "json", "not json {");
    check(bad.op === "serviceCallFailure" && bad.serviceId === svc.id, `a body that does not decode got ${JSON.stringify(bad)}, want serviceCallFailure`);
    summary.badBodyFailure = bad.message;
    const wrongEnc = await call(3, "protobuf", { a: 1, b: 1 });
    check(wrongEnc.op === "serviceCallFailure", `a call in encoding protobuf got ${JSON.stringify(wrongEnc)}, want serviceCallFailure`);
    summary.wrongEncodingFailure = wrongEnc.message;

    // Client publishing.
    summary.publish = await clientPublish(s, check);

    // Unsubscribe: a call made after it is a barrier (the gateway handles
    // a client's ops in order and queues its frames in order), so nothing
    // of the subscription may come after the call's answer.
    s.client.unsubscribe(jsid);
    await call(4, "json", { a: 1, b: 1 });
    const jsonAt = s.received(jsid).length;
    const pbAt = s.received(psid).length;
    await s.until(`3 more messages on ${POSE_PB} after unsubscribing ${POSE}`, 5000, () => s.received(psid).length >= pbAt + 3);
    summary.afterUnsubscribe = { [POSE]: s.received(jsid).length - jsonAt, [POSE_PB]: s.received(psid).length - pbAt };
    check(s.received(jsid).length === jsonAt, `${s.received(jsid).length - jsonAt} messages of ${POSE} after unsubscribing`);

    // Refusals of publishing are expected when it is denied; no other errors.
    const errs = s.errorStatuses().filter((st) => allowed || !/not allowed/.test(st.message));
    check(errs.length === 0, `status errors: ${errs.map((st) => st.message).join("; ")}`);
    check(s.errors.length === 0, `client errors: ${s.errors.join("; ")}`);
  } catch (err) {
    failures.push(`${subprotocol}: ${err.message}`);
  } finally {
    summary.statuses = {}; // message -> count: refusals repeat
    for (const st of s.statuses) summary.statuses[st.message] = (summary.statuses[st.message] ?? 0) + 1;
    s.client.close();
    await s.until("the connection to close", 5000, () => s.closed).catch((err) => failures.push(`${subprotocol}: ${err.message}`));
  }
  return summary;
}

// clientPublish advertises a json channel on the topic and publishes on it
// until the Go test acknowledges (allowed) or the bound passes (denied).
async function clientPublish(s, check) {
  const ack = path.join(opts["ack-dir"], s.subprotocol);
  const before = s.statuses.length;
  const id = s.client.advertise({
    topic: opts.topic, encoding: "json", schemaName: "conf.Note", schemaEncoding: "jsonschema",
    schema: JSON.stringify({ type: "object", properties: { from: { type: "string" }, n: { type: "integer" } } }),
  });
  const out = { channelId: id };
  // refusal waits for a status error about op; its absence is a failure,
  // not the end of the session: what the subscriber gets matters most.
  const refusal = (op) => s.until(`a status error refusing ${op}`, 5000,
    () => s.statuses.slice(before).find((st) => st.level === 2 && st.message.startsWith(`${op}:`)))
    .then((st) => st.message, (err) => { check(false, err.message); return undefined; });
  if (!allowed) out.advertiseRefusal = await refusal("advertise");
  const bound = allowed ? 15000 : 2000;
  const start = Date.now();
  let n = 0;
  while (!fs.existsSync(ack) && Date.now() - start < bound) {
    s.client.sendMessage(id, encode({ from: s.subprotocol, n: n++ }));
    await new Promise((resolve) => setTimeout(resolve, 50)); // the publishing period
  }
  out.sent = n;
  out.acked = fs.existsSync(ack);
  out.ackMs = Date.now() - start;
  if (allowed) {
    check(out.acked, `the colugo subscriber printed none of ${n} messages published in ${bound} ms`);
    s.client.unadvertise(id);
  } else {
    check(!out.acked, `the colugo subscriber printed a message published with publishing denied`);
    out.publishRefusal = await refusal("clientMessageData");
  }
  return out;
}

const sessions = [];
for (const p of SUBPROTOCOLS) sessions.push(await runSession(p));
console.log(JSON.stringify({ ok: failures.length === 0, publish: opts.publish, failures, sessions }, null, 1));
if (failures.length > 0) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
