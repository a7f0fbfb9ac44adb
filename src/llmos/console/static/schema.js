// Live checking of a spec against the JSON Schema the server publishes
// (GET /v1/specs/schema), so errors show at their path while typing. The server's own
// check (POST /v1/specs/check) stays the authority: the console runs it before submitting.
// Only the keywords that schema uses are handled (type, enum, const, required,
// properties, additionalProperties, items, min/maxItems, minLength, pattern, numeric
// bounds, $ref, anyOf, oneOf with a discriminator).

function resolve(root, node) {
  while (node && node.$ref) {
    node = node.$ref.replace(/^#\//, "").split("/").reduce((o, k) => o[k], root);
  }
  return node || {};
}

function typeOk(type, value) {
  switch (type) {
    case "string": return typeof value === "string";
    case "integer": return Number.isInteger(value);
    case "number": return typeof value === "number" && Number.isFinite(value);
    case "boolean": return typeof value === "boolean";
    case "array": return Array.isArray(value);
    case "object": return value !== null && typeof value === "object" && !Array.isArray(value);
    case "null": return value === null;
    default: return true;
  }
}

const join = (path, key) => (path ? `${path}.${key}` : String(key));

function check(root, node, value, path, errors) {
  node = resolve(root, node);
  if (node.anyOf) {
    const tries = node.anyOf.map((option) => { const e = []; check(root, option, value, path, e); return e; });
    if (tries.some((e) => !e.length)) return;
    const nonNull = node.anyOf.map((o) => resolve(root, o)).findIndex((o) => o.type !== "null");
    errors.push(...(value === null || nonNull < 0 ? tries[0] : tries[nonNull]));
    return;
  }
  if (node.oneOf) {
    const disc = node.discriminator;
    if (disc && typeOk("object", value)) {
      const tag = value[disc.propertyName];
      const target = tag === undefined ? node.oneOf[0] : disc.mapping[tag] && { $ref: disc.mapping[tag] };
      if (!target) {
        errors.push({ path: join(path, disc.propertyName), message: `must be one of ${Object.keys(disc.mapping).join(", ")}` });
        return;
      }
      check(root, target, value, path, errors);
      return;
    }
    const tries = node.oneOf.map((option) => { const e = []; check(root, option, value, path, e); return e; });
    if (!tries.some((e) => !e.length)) errors.push(...tries[0]);
    return;
  }
  if (node.type && !typeOk(node.type, value)) {
    errors.push({ path: path || "(spec)", message: `must be ${node.type === "object" ? "an object" : `a ${node.type}`}` });
    return;
  }
  if ("const" in node && value !== node.const) errors.push({ path, message: `must be ${JSON.stringify(node.const)}` });
  if (node.enum && !node.enum.includes(value)) errors.push({ path, message: `must be one of ${node.enum.join(", ")}` });
  if (typeof value === "number") {
    if (node.minimum !== undefined && value < node.minimum) errors.push({ path, message: `must be at least ${node.minimum}` });
    if (node.maximum !== undefined && value > node.maximum) errors.push({ path, message: `must be at most ${node.maximum}` });
    if (node.exclusiveMinimum !== undefined && value <= node.exclusiveMinimum) errors.push({ path, message: `must be greater than ${node.exclusiveMinimum}` });
    if (node.exclusiveMaximum !== undefined && value >= node.exclusiveMaximum) errors.push({ path, message: `must be less than ${node.exclusiveMaximum}` });
  }
  if (typeof value === "string") {
    if (node.minLength !== undefined && value.length < node.minLength) errors.push({ path, message: `must have at least ${node.minLength} characters` });
    if (node.pattern && !new RegExp(node.pattern).test(value)) errors.push({ path, message: `must match ${node.pattern}` });
  }
  if (Array.isArray(value)) {
    if (node.minItems !== undefined && value.length < node.minItems) errors.push({ path, message: `must have at least ${node.minItems} items` });
    if (node.maxItems !== undefined && value.length > node.maxItems) errors.push({ path, message: `must have at most ${node.maxItems} items` });
    if (node.items) value.forEach((item, i) => check(root, node.items, item, join(path, i), errors));
  }
  if (typeOk("object", value) && (node.properties || node.required)) {
    const props = node.properties || {};
    for (const key of node.required || []) {
      if (!(key in value)) errors.push({ path: join(path, key), message: "required" });
    }
    for (const [key, item] of Object.entries(value)) {
      if (key in props) check(root, props[key], item, join(path, key), errors);
      else if (node.additionalProperties === false) errors.push({ path: join(path, key), message: "not a field here (misspelt?)" });
    }
  }
}

// the problems of `value` under `schema`, each {path, message}
export function validate(schema, value) {
  const errors = [];
  check(schema, schema, value, "", errors);
  return errors;
}
