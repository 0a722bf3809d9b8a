"""Cross-reference checks that no schema can do: names that must match across objects.

Services named by the Rollout exist and select its pods; the HTTPRoute the plugin edits
exists and routes to both services; every AnalysisTemplate the Rollout names exists and
gets every argument it uses; ``count`` comes with ``interval``; weights stay in 0..100;
images loaded into kind carry a real tag (never ``:latest``, which kind would try to pull);
the gatewayAPI plugin config has only fields the plugin knows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlops_workbench.k8s.findings import Finding, name_of

PLUGIN = "argoproj-labs/gatewayAPI"
PLUGIN_FIELDS = {
    "httpRoute",
    "httpRoutes",
    "grpcRoute",
    "grpcRoutes",
    "tcpRoute",
    "tcpRoutes",
    "tlsRoutes",
    "namespace",
    "useHeaderRoutes",
    "configMap",
    "inProgressLabelKey",
    "inProgressLabelValue",
    "disableInProgressLabel",
    "httpRouteSelector",
}
WORKLOADS = {"Rollout", "Deployment", "Job", "StatefulSet", "DaemonSet"}
ARG_USE = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


def _by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {(o.get("metadata") or {}).get("name", ""): o for o in objs if o.get("kind") == kind}


def _f(obj: dict[str, Any], path: str, message: str, fix: str) -> Finding:
    return Finding(resource=name_of(obj), path=path, message=message, fix=fix)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _pod_spec(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Job":
        return "spec.template.spec", ((spec.get("template") or {}).get("spec") or {})
    return "spec.template.spec", ((spec.get("template") or {}).get("spec") or {})


def images(objs: list[dict[str, Any]]) -> list[Finding]:
    out = []
    for obj in (o for o in objs if o.get("kind") in WORKLOADS):
        base, pod = _pod_spec(obj)
        for group in ("initContainers", "containers"):
            for i, c in enumerate(pod.get(group) or []):
                image = str(c.get("image", ""))
                tail = image.rsplit("/", 1)[-1]
                if "@" in tail:
                    continue
                if ":" not in tail or tail.endswith(":latest"):
                    out.append(
                        _f(
                            obj,
                            f"{base}.{group}.{i}.image",
                            f"image '{image}' has no fixed tag",
                            "tag it with a version (e.g. :v1): kind cannot pull a locally built :latest image "
                            "and a moving tag is not reproducible",
                        )
                    )
    return out


def _rollout_refs(ro: dict[str, Any], objs: list[dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    services, routes = _by_kind(objs, "Service"), _by_kind(objs, "HTTPRoute")
    canary = ((ro.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    base = "spec.strategy.canary"
    labels = (((ro.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    wanted = {}
    for field in ("stableService", "canaryService"):
        name = canary.get(field)
        if not name:
            out.append(_f(ro, f"{base}.{field}", f"{field} is missing", "name the Service that selects the pods"))
            continue
        wanted[field] = name
        svc = services.get(name)
        if svc is None:
            out.append(
                _f(
                    ro,
                    f"{base}.{field}",
                    f"Service '{name}' does not exist",
                    f"add a Service named {name} or fix the name",
                )
            )
            continue
        selector = (svc.get("spec") or {}).get("selector") or {}
        if any(labels.get(k) != v for k, v in selector.items()) or not selector:
            out.append(
                _f(
                    svc,
                    "spec.selector",
                    f"selector {selector} does not match the pods of {name_of(ro)} ({labels})",
                    "select the Rollout's pod template labels",
                )
            )
    plugins = (canary.get("trafficRouting") or {}).get("plugins") or {}
    config = plugins.get(PLUGIN)
    if config is None:
        out.append(
            _f(
                ro,
                f"{base}.trafficRouting.plugins",
                f"no '{PLUGIN}' traffic router",
                f"route with plugins: {{{PLUGIN}: {{httpRoute: NAME}}}}",
            )
        )
    else:
        for key in sorted(set(config) - PLUGIN_FIELDS):
            out.append(
                _f(
                    ro,
                    f"{base}.trafficRouting.plugins.{PLUGIN}.{key}",
                    f"unknown plugin field '{key}'",
                    f"use one of {', '.join(sorted(PLUGIN_FIELDS))}",
                )
            )
        route_name = config.get("httpRoute")
        route = routes.get(route_name)
        if route is None:
            out.append(
                _f(
                    ro,
                    f"{base}.trafficRouting.plugins.{PLUGIN}.httpRoute",
                    f"HTTPRoute '{route_name}' does not exist",
                    "add the HTTPRoute the plugin rewrites, or fix the name",
                )
            )
        else:
            out += _route_backends(route, set(wanted.values()))
    for i, step in enumerate(canary.get("steps") or []):
        w = step.get("setWeight")
        if isinstance(w, int) and not 0 <= w <= 100:
            out.append(_f(ro, f"{base}.steps.{i}.setWeight", f"weight {w} is outside 0..100", "use a percentage 0-100"))
    return out


def _route_backends(route: dict[str, Any], services: set[str]) -> list[Finding]:
    out, named = [], set()
    for r, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        for b, ref in enumerate(rule.get("backendRefs") or []):
            named.add(ref.get("name"))
            w = ref.get("weight")
            if isinstance(w, int) and w < 0:
                out.append(
                    _f(
                        route,
                        f"spec.rules.{r}.backendRefs.{b}.weight",
                        f"negative weight {w}",
                        "use 0 or more (Argo sets the canary weight; start stable at 100, canary at 0)",
                    )
                )
    for name in sorted(services - named):
        out.append(
            _f(
                route,
                "spec.rules",
                f"no backendRef to Service '{name}'",
                "list both the stable and the canary Service as backendRefs: Argo rewrites their weights",
            )
        )
    return out


def _templates(ro: dict[str, Any], objs: list[dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    templates = _by_kind(objs, "AnalysisTemplate")
    canary = ((ro.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    uses = [("spec.strategy.canary.analysis", canary.get("analysis") or {})]
    uses += [
        (f"spec.strategy.canary.steps.{i}.analysis", s["analysis"])
        for i, s in enumerate(canary.get("steps") or [])
        if isinstance(s, dict) and "analysis" in s
    ]
    for path, analysis in uses:
        given = {a.get("name") for a in analysis.get("args") or []}
        for j, ref in enumerate(analysis.get("templates") or []):
            name = ref.get("templateName")
            tmpl = templates.get(name)
            if tmpl is None:
                out.append(
                    _f(
                        ro,
                        f"{path}.templates.{j}.templateName",
                        f"AnalysisTemplate '{name}' does not exist",
                        "render it with `workbench k8s render` or fix the name",
                    )
                )
                continue
            declared = {a.get("name"): a for a in (tmpl.get("spec") or {}).get("args") or []}
            for arg, spec in declared.items():
                if "value" not in spec and "valueFrom" not in spec and arg not in given:
                    out.append(
                        _f(
                            ro,
                            f"{path}.args",
                            f"argument '{arg}' of {name_of(tmpl)} is not supplied",
                            f"add {{name: {arg}, ...}} to the Rollout's analysis args",
                        )
                    )
    return out


def _template_self(tmpl: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    spec = tmpl.get("spec") or {}
    declared = {a.get("name") for a in spec.get("args") or []}
    for i, m in enumerate(spec.get("metrics") or []):
        for arg in sorted({a for s in _strings(m) for a in ARG_USE.findall(s)} - declared):
            out.append(
                _f(
                    tmpl,
                    f"spec.metrics.{i}",
                    f"uses {{{{args.{arg}}}}} but declares no argument '{arg}'",
                    f"add {{name: {arg}}} to spec.args",
                )
            )
        count = m.get("count")
        if isinstance(count, int) and count > 1 and not m.get("interval"):
            out.append(
                _f(
                    tmpl,
                    f"spec.metrics.{i}.count",
                    f"count {count} without interval",
                    "set interval (e.g. 30s): Argo needs it to space the measurements",
                )
            )
        if not m.get("successCondition") and not m.get("failureCondition"):
            out.append(
                _f(
                    tmpl,
                    f"spec.metrics.{i}",
                    "no successCondition or failureCondition",
                    "say when a measurement passes, e.g. successCondition: result[0] <= 0.02",
                )
            )
    return out


def check(objs: list[dict[str, Any]]) -> list[Finding]:
    out = images(objs)
    for ro in (o for o in objs if o.get("kind") == "Rollout"):
        out += _rollout_refs(ro, objs) + _templates(ro, objs)
    for tmpl in (o for o in objs if o.get("kind") == "AnalysisTemplate"):
        out += _template_self(tmpl)
    routes = _by_kind(objs, "HTTPRoute")
    gateways, classes = _by_kind(objs, "Gateway"), _by_kind(objs, "GatewayClass")
    for route in routes.values():
        for i, parent in enumerate((route.get("spec") or {}).get("parentRefs") or []):
            if parent.get("kind", "Gateway") == "Gateway" and gateways and parent.get("name") not in gateways:
                out.append(
                    _f(
                        route,
                        f"spec.parentRefs.{i}.name",
                        f"Gateway '{parent.get('name')}' does not exist",
                        f"attach to one of {', '.join(sorted(gateways))}",
                    )
                )
    for gw in gateways.values():
        cls = (gw.get("spec") or {}).get("gatewayClassName")
        if classes and cls not in classes:
            out.append(
                _f(
                    gw,
                    "spec.gatewayClassName",
                    f"GatewayClass '{cls}' does not exist",
                    f"use one of {', '.join(sorted(classes))}",
                )
            )
    return out
