// Validate Argo Rollouts, Argo CD and Gateway API resources offline against the schemas shipped in the
// npm packages @kubernetes-models/argo-rollouts, @kubernetes-models/argo-cd and
// @kubernetes-models/gateway-api (see package.json). Argo Rollouts and Argo CD share the apiVersion
// argoproj.io/v1alpha1: each package is asked in turn for the kind (their kinds do not overlap).
// Input (stdin): a JSON array of Kubernetes objects. Output (stdout): a JSON array, one entry per
// object: {"known": bool, "errors": [{"path", "message"}], "unknown": ["spec.foo", ...]}.
// "unknown" lists fields the schema does not define: the generated validators ignore extra
// fields, so every object is wrapped in a Proxy that records which keys the validator reads;
// keys it never reads (outside free-form maps, which the validator enumerates) are not in the schema.

const MODULES = {
  "argoproj.io/v1alpha1": [
    "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1",
    "@kubernetes-models/argo-cd/argoproj.io/v1alpha1",
  ],
  "gateway.networking.k8s.io/v1": ["@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1"],
  "gateway.networking.k8s.io/v1beta1": ["@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1"],
  "gateway.networking.k8s.io/v1alpha2": ["@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2"],
};

function tracked(value, path, seen, enumerated) {
  if (value === null || typeof value !== "object") return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string") seen.add(path ? `${path}.${key}` : key);
      const child = Reflect.get(target, key, receiver);
      if (typeof key !== "string" || !Object.prototype.hasOwnProperty.call(target, key)) return child;
      return tracked(child, path ? `${path}.${key}` : key, seen, enumerated);
    },
    has(target, key) {
      if (typeof key === "string") seen.add(path ? `${path}.${key}` : key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      enumerated.add(path);
      return Reflect.ownKeys(target);
    },
  });
}

function unknownFields(value, path, seen, enumerated, out) {
  if (value === null || typeof value !== "object") return;
  const free = enumerated.has(path) && !Array.isArray(value);
  for (const key of Object.keys(value)) {
    const child = path ? `${path}.${key}` : key;
    if (!Array.isArray(value) && !free && !seen.has(child)) {
      out.push(child);
      continue;
    }
    unknownFields(value[key], child, seen, enumerated, out);
  }
}

async function validatorFor(obj) {
  const bases = MODULES[obj.apiVersion];
  if (!bases || typeof obj.kind !== "string" || !/^[A-Za-z]+$/.test(obj.kind)) return null;
  for (const base of bases) {
    try {
      const mod = await import(`${base}/${obj.kind}`);
      const Model = mod[obj.kind];
      if (Model && typeof Model.prototype.validate === "function") return Model;
    } catch {
      // not in this package: try the next one
    }
  }
  return null;
}

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => { text += chunk; });
  process.stdin.on("end", () => resolve(text));
}));

const results = [];
for (const obj of input) {
  const Model = await validatorFor(obj);
  if (!Model) {
    results.push({ known: false, errors: [], unknown: [] });
    continue;
  }
  const seen = new Set();
  const enumerated = new Set();
  const errors = [];
  try {
    Model.prototype.validate.call(tracked(obj, "", seen, enumerated));
  } catch (err) {
    for (const e of err.errors ?? [{ instancePath: "", message: String(err.message) }]) {
      errors.push({ path: e.instancePath.split("/").filter(Boolean).join("."), message: e.message, params: e.params ?? {} });
    }
  }
  const unknown = [];
  unknownFields(obj, "", seen, enumerated, unknown);
  results.push({ known: true, errors, unknown });
}
process.stdout.write(JSON.stringify(results));
