// A small protobuf decoder and encoder driven by a FileDescriptorSet, as
// the gateway advertises it (base64, schemaName = full message name). It
// has no generated code: every message and field comes from the
// descriptors, which come from the network, so every read is bounds
// checked and bad data throws an Error (never a crash or a hang).

const utf8 = new TextDecoder('utf-8');
const utf8enc = new TextEncoder();
const maxDepth = 64;

// Field types of descriptor.proto (FieldDescriptorProto.Type).
const T = {
  double: 1, float: 2, int64: 3, uint64: 4, int32: 5, fixed64: 6, fixed32: 7, bool: 8,
  string: 9, group: 10, message: 11, bytes: 12, uint32: 13, enum: 14, sfixed32: 15,
  sfixed64: 16, sint32: 17, sint64: 18,
};
const repeatedLabel = 3;

// wireOf is the wire type a field type is written with when not packed.
function wireOf(type) {
  switch (type) {
    case T.double: case T.fixed64: case T.sfixed64: return 1;
    case T.float: case T.fixed32: case T.sfixed32: return 5;
    case T.string: case T.bytes: case T.message: return 2;
    case T.group: return 3;
    default: return 0;
  }
}

const packable = (type) => wireOf(type) === 0 || wireOf(type) === 1 || wireOf(type) === 5;

// num gives a 64-bit value as a number when that is exact, else as a
// decimal string (as protobuf's JSON mapping does).
function num(big) {
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big.toString();
}

export function hex(bytes, max = 64) {
  let s = '';
  for (let i = 0; i < Math.min(bytes.length, max); i++) s += bytes[i].toString(16).padStart(2, '0') + (i % 2 ? ' ' : '');
  return s.trim() + (bytes.length > max ? ` … (${bytes.length} bytes)` : '');
}

class Reader {
  constructor(buf) { this.buf = buf; this.pos = 0; }
  done() { return this.pos >= this.buf.length; }
  byte() {
    if (this.pos >= this.buf.length) throw new Error('truncated message');
    return this.buf[this.pos++];
  }
  varint() { // as an unsigned 64-bit BigInt
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.byte();
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return BigInt.asUintN(64, v);
    }
    throw new Error('varint longer than 10 bytes');
  }
  bytes(n) {
    if (n < 0 || n > this.buf.length - this.pos) throw new Error('length past the end of the message');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  lenDelim() {
    const n = this.varint();
    if (n > BigInt(this.buf.length - this.pos)) throw new Error('length past the end of the message');
    return this.bytes(Number(n));
  }
  view(n) { const b = this.bytes(n); return new DataView(b.buffer, b.byteOffset, n); }
  tag() {
    const t = this.varint();
    const field = t >> 3n;
    if (field === 0n || field > 536870911n) throw new Error(`bad field number ${field}`);
    return [Number(field), Number(t & 7n)];
  }
  // skip passes over one value of wire type wire (a whole group for 3).
  skip(wire, field, depth = 0) {
    switch (wire) {
      case 0: this.varint(); return;
      case 1: this.bytes(8); return;
      case 2: this.lenDelim(); return;
      case 5: this.bytes(4); return;
      case 3:
        if (depth > maxDepth) throw new Error('groups nested too deep');
        for (;;) {
          const [f, w] = this.tag();
          if (w === 4) {
            if (f !== field) throw new Error(`group ${field} ended by ${f}`);
            return;
          }
          this.skip(w, f, depth + 1);
        }
      default: throw new Error(`bad wire type ${wire}`);
    }
  }
}

// rawFields reads a message without a schema: field number to its
// varints (BigInt) and length-delimited values (Uint8Array).
function rawFields(buf) {
  const r = new Reader(buf);
  const m = new Map();
  while (!r.done()) {
    const [f, w] = r.tag();
    let v;
    if (w === 0) v = r.varint();
    else if (w === 2) v = r.lenDelim();
    else { r.skip(w, f); continue; }
    if (!m.has(f)) m.set(f, []);
    m.get(f).push(v);
  }
  return m;
}
const last = (m, f) => (m.has(f) ? m.get(f).at(-1) : undefined);
const str = (m, f) => (m.has(f) && m.get(f).at(-1) instanceof Uint8Array ? utf8.decode(m.get(f).at(-1)) : '');
const int = (m, f) => (typeof last(m, f) === 'bigint' ? Number(BigInt.asIntN(32, last(m, f))) : 0);
const sub = (m, f) => (last(m, f) instanceof Uint8Array ? rawFields(last(m, f)) : new Map());

export function base64Bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// Registry holds the message and enum types of one FileDescriptorSet.
export class Registry {
  constructor() { this.types = new Map(); }

  static fromBase64(b64) { return Registry.fromSet(base64Bytes(b64)); }

  static fromSet(buf) {
    const reg = new Registry();
    for (const file of rawFields(buf).get(1) || []) {
      if (file instanceof Uint8Array) reg.#addFile(file);
    }
    return reg;
  }

  #addFile(buf) {
    const m = rawFields(buf);
    const pkg = str(m, 2);
    const syntax = str(m, 12) || 'proto2';
    const prefix = pkg ? pkg + '.' : '';
    for (const d of m.get(4) || []) if (d instanceof Uint8Array) this.#addMessage(d, prefix, syntax);
    for (const e of m.get(5) || []) if (e instanceof Uint8Array) this.#addEnum(e, prefix);
  }

  #addMessage(buf, prefix, syntax) {
    const m = rawFields(buf);
    const name = prefix + str(m, 1);
    const mapEntry = last(sub(m, 7), 7) === 1n; // MessageOptions.map_entry
    const fields = [];
    for (const fb of m.get(2) || []) {
      if (!(fb instanceof Uint8Array)) continue;
      const fm = rawFields(fb);
      const packedOpt = last(sub(fm, 8), 2); // FieldOptions.packed
      fields.push({
        name: str(fm, 1), number: int(fm, 3), label: int(fm, 4), type: int(fm, 5),
        typeName: str(fm, 6).replace(/^\./, ''), jsonName: str(fm, 10),
        // proto3 and editions pack repeated scalars unless told not to.
        packed: packedOpt !== undefined ? packedOpt !== 0n : syntax !== 'proto2',
      });
    }
    this.types.set(name, { kind: 'message', name, fields, byNumber: new Map(fields.map((f) => [f.number, f])), mapEntry });
    for (const n of m.get(3) || []) if (n instanceof Uint8Array) this.#addMessage(n, name + '.', syntax);
    for (const e of m.get(4) || []) if (e instanceof Uint8Array) this.#addEnum(e, name + '.');
  }

  #addEnum(buf, prefix) {
    const m = rawFields(buf);
    const name = prefix + str(m, 1);
    const byNumber = new Map();
    const byName = new Map();
    for (const vb of m.get(2) || []) {
      if (!(vb instanceof Uint8Array)) continue;
      const vm = rawFields(vb);
      const n = int(vm, 2);
      if (!byNumber.has(n)) byNumber.set(n, str(vm, 1));
      byName.set(str(vm, 1), n);
    }
    this.types.set(name, { kind: 'enum', name, byNumber, byName });
  }

  #message(name) {
    const t = this.types.get(name);
    if (!t || t.kind !== 'message') throw new Error(`no message type ${name} in the schema`);
    return t;
  }

  // decode reads buf as message type name into a plain object: fields
  // by name, repeated fields as arrays, maps as objects, 64-bit integers
  // as numbers when exact else strings, bytes as base64, enums by name,
  // fields the schema does not know under "[unknown fields]".
  decode(name, buf, depth = 0) {
    const t = this.#message(name);
    if (depth > maxDepth) throw new Error('messages nested too deep');
    const r = new Reader(buf);
    const out = Object.create(null);
    const unknown = [];
    while (!r.done()) {
      const [no, wire] = r.tag();
      const f = t.byNumber.get(no);
      if (!f) {
        unknown.push(readUnknown(r, no, wire));
        continue;
      }
      const repeated = f.label === repeatedLabel;
      if (repeated && wire === 2 && packable(f.type)) {
        const pr = new Reader(r.lenDelim());
        const arr = (out[f.name] ??= []);
        while (!pr.done()) arr.push(this.#value(f, pr, depth));
        continue;
      }
      if (wire !== wireOf(f.type)) {
        unknown.push({ ...readUnknown(r, no, wire), note: `wire type ${wire} for field ${f.name}` });
        continue;
      }
      const v = this.#value(f, r, depth);
      if (repeated) (out[f.name] ??= []).push(v);
      else out[f.name] = v;
    }
    for (const f of t.fields) {
      const et = f.type === T.message ? this.types.get(f.typeName) : null;
      if (et?.mapEntry && Array.isArray(out[f.name])) {
        const obj = Object.create(null);
        for (const e of out[f.name]) obj[e.key === undefined ? '' : String(e.key)] = e.value ?? null;
        out[f.name] = obj;
      }
    }
    if (unknown.length) out['[unknown fields]'] = unknown;
    return out;
  }

  #value(f, r, depth) {
    switch (f.type) {
      case T.double: return r.view(8).getFloat64(0, true);
      case T.float: return r.view(4).getFloat32(0, true);
      case T.int64: return num(BigInt.asIntN(64, r.varint()));
      case T.uint64: return num(r.varint());
      case T.int32: return Number(BigInt.asIntN(32, r.varint()));
      case T.uint32: return Number(BigInt.asUintN(32, r.varint()));
      case T.fixed64: return num(r.view(8).getBigUint64(0, true));
      case T.sfixed64: return num(r.view(8).getBigInt64(0, true));
      case T.fixed32: return r.view(4).getUint32(0, true);
      case T.sfixed32: return r.view(4).getInt32(0, true);
      case T.bool: return r.varint() !== 0n;
      case T.sint32: { const n = r.varint(); return Number(BigInt.asIntN(32, (n >> 1n) ^ -(n & 1n))); }
      case T.sint64: { const n = r.varint(); return num(BigInt.asIntN(64, (n >> 1n) ^ -(n & 1n))); }
      case T.string: return utf8.decode(r.lenDelim());
      case T.bytes: return bytesBase64(r.lenDelim());
      case T.message: return this.decode(f.typeName, r.lenDelim(), depth + 1);
      case T.enum: {
        const n = Number(BigInt.asIntN(32, r.varint()));
        const et = this.types.get(f.typeName);
        return et?.kind === 'enum' && et.byNumber.has(n) ? et.byNumber.get(n) : n;
      }
      case T.group: r.skip(3, f.number); return '[group, not decoded]';
      default: throw new Error(`field ${f.name} has unknown type ${f.type}`);
    }
  }

  // template is an example value of message type name, for a form.
  template(name, depth = 0) {
    const t = this.#message(name);
    const out = {};
    for (const f of t.fields) {
      const et = f.type === T.message ? this.types.get(f.typeName) : null;
      if (et?.mapEntry) out[f.name] = {};
      else if (f.label === repeatedLabel) out[f.name] = [];
      else if (f.type === T.message) out[f.name] = depth < 3 && et ? this.template(f.typeName, depth + 1) : null;
      else out[f.name] = this.#zero(f);
    }
    return out;
  }

  #zero(f) {
    switch (f.type) {
      case T.bool: return false;
      case T.string: case T.bytes: return '';
      case T.enum: {
        const et = this.types.get(f.typeName);
        return et?.kind === 'enum' && et.byNumber.size ? [...et.byNumber.values()][0] : 0;
      }
      default: return 0;
    }
  }

  // encode writes obj (as decode returns it, or numbers for enums and
  // 64-bit integers) as message type name. It throws on a field the type
  // does not have or a value of the wrong kind.
  encode(name, obj, depth = 0) {
    const t = this.#message(name);
    if (depth > maxDepth) throw new Error('messages nested too deep');
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${name}: want an object`);
    const w = new Writer();
    const byName = new Map();
    for (const f of t.fields) { byName.set(f.name, f); if (f.jsonName) byName.set(f.jsonName, f); }
    for (const [k, v] of Object.entries(obj)) {
      const f = byName.get(k);
      if (!f) throw new Error(`${name} has no field ${k}`);
      if (v === null || v === undefined) continue;
      const et = f.type === T.message ? this.types.get(f.typeName) : null;
      if (et?.mapEntry) {
        if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${k}: want an object (a map)`);
        const keyField = et.byNumber.get(1);
        for (const [mk, mv] of Object.entries(v)) {
          const key = keyField && keyField.type !== T.string ? (keyField.type === T.bool ? mk === 'true' : mk) : mk;
          w.tag(f.number, 2).bytes(this.encode(f.typeName, { key, value: mv }, depth + 1));
        }
      } else if (f.label === repeatedLabel) {
        if (!Array.isArray(v)) throw new Error(`${k}: want an array`);
        if (f.packed && packable(f.type)) {
          const pw = new Writer();
          for (const x of v) this.#write(pw, f, x, depth, k);
          w.tag(f.number, 2).bytes(pw.finish());
        } else {
          for (const x of v) { w.tag(f.number, wireOf(f.type)); this.#write(w, f, x, depth, k); }
        }
      } else {
        w.tag(f.number, wireOf(f.type));
        this.#write(w, f, v, depth, k);
      }
    }
    return w.finish();
  }

  #write(w, f, v, depth, path) {
    const big = () => {
      if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
      throw new Error(`${path}: want an integer, not ${JSON.stringify(v)}`);
    };
    const float = () => {
      if (typeof v === 'number') return v;
      if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
      throw new Error(`${path}: want a number, not ${JSON.stringify(v)}`);
    };
    switch (f.type) {
      case T.double: w.fixed(8, (d) => d.setFloat64(0, float(), true)); return;
      case T.float: w.fixed(4, (d) => d.setFloat32(0, float(), true)); return;
      case T.int64: case T.uint64: case T.int32: case T.uint32: w.varint(BigInt.asUintN(64, big())); return;
      case T.sint32: case T.sint64: { const n = big(); w.varint(BigInt.asUintN(64, (n << 1n) ^ (n >> 63n))); return; }
      case T.fixed64: w.fixed(8, (d) => d.setBigUint64(0, BigInt.asUintN(64, big()), true)); return;
      case T.sfixed64: w.fixed(8, (d) => d.setBigInt64(0, BigInt.asIntN(64, big()), true)); return;
      case T.fixed32: w.fixed(4, (d) => d.setUint32(0, Number(BigInt.asUintN(32, big())), true)); return;
      case T.sfixed32: w.fixed(4, (d) => d.setInt32(0, Number(BigInt.asIntN(32, big())), true)); return;
      case T.bool:
        if (typeof v !== 'boolean') throw new Error(`${path}: want true or false`);
        w.varint(v ? 1n : 0n); return;
      case T.string:
        if (typeof v !== 'string') throw new Error(`${path}: want a string`);
        w.bytes(utf8enc.encode(v)); return;
      case T.bytes:
        if (typeof v !== 'string') throw new Error(`${path}: want base64 bytes`);
        w.bytes(base64Bytes(v)); return;
      case T.message: w.bytes(this.encode(f.typeName, v, depth + 1)); return;
      case T.enum: {
        const et = this.types.get(f.typeName);
        if (typeof v === 'string' && et?.kind === 'enum' && et.byName.has(v)) v = et.byName.get(v);
        w.varint(BigInt.asUintN(64, big())); return;
      }
      default: throw new Error(`${path}: cannot encode field type ${f.type}`);
    }
  }
}

function readUnknown(r, field, wire) {
  switch (wire) {
    case 0: return { field, varint: num(r.varint()) };
    case 1: return { field, fixed64: hex(r.bytes(8)) };
    case 5: return { field, fixed32: hex(r.bytes(4)) };
    case 2: { const b = r.lenDelim(); return { field, bytes: hex(b) }; }
    case 3: r.skip(3, field); return { field, group: 'skipped' };
    default: throw new Error(`bad wire type ${wire} for field ${field}`);
  }
}

class Writer {
  constructor() { this.parts = []; this.len = 0; }
  push(b) { this.parts.push(b); this.len += b.length; return this; }
  varint(v) {
    const out = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      out.push(b);
    } while (v);
    return this.push(Uint8Array.from(out));
  }
  tag(field, wire) { return this.varint((BigInt(field) << 3n) | BigInt(wire)); }
  bytes(b) { this.varint(BigInt(b.length)); return this.push(b); }
  fixed(n, set) { const b = new Uint8Array(n); set(new DataView(b.buffer)); return this.push(b); }
  finish() {
    const out = new Uint8Array(this.len);
    let off = 0;
    for (const p of this.parts) { out.set(p, off); off += p.length; }
    return out;
  }
}
