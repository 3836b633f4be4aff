"""The REST API's reference, served: ``/api/openapi.yaml`` and ``/api/docs``.

``/api/openapi.yaml`` is docs/openapi.yaml as it is in the repository.
``/api/docs`` is the same document rendered here, once, into one HTML page
with the project's stylesheet: every operation (grouped by tag) with its
parameters, request body, responses and examples, then every schema. The page
runs no script and loads nothing from elsewhere (the pages' CSP applies), so
no renderer is vendored and no request leaves the reader's browser.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")

Node = Mapping[str, Any]


def setup(app: web.Application) -> None:
    """Add the two routes (signalling/bootstrap.py calls this)."""
    app.router.add_get("/api/openapi.yaml", openapi_yaml)
    app.router.add_get("/api/docs", api_docs)


async def openapi_yaml(request: web.Request) -> web.Response:
    return web.Response(
        body=_source(),
        content_type="application/yaml",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def api_docs(request: web.Request) -> web.Response:
    return web.Response(
        text=render(),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@functools.cache
def _source() -> bytes:
    return OPENAPI_PATH.read_bytes()


@functools.cache
def render() -> str:
    """The reference page of docs/openapi.yaml (rendered once per process)."""
    document: dict[str, Any] = yaml.safe_load(_source())
    return Renderer(document).page()


# -- text ---------------------------------------------------------------------------

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_EMPHASIS = re.compile(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])")


def inline(text: str) -> str:
    """Escaped text with `code` and **bold** spans."""
    out = html.escape(text)
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    out = _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", out)
    return _EMPHASIS.sub(lambda m: f"<em>{m.group(1)}</em>", out)


def prose(text: str | None) -> str:
    """Paragraphs and "- " lists of a description (the subset the document uses)."""
    if not text:
        return ""
    parts: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lead: list[str] = []
        items: list[str] = []
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("- "):
                items.append(stripped[2:])
            elif items:
                items[-1] += " " + stripped
            else:
                lead.append(stripped)
        if lead:
            parts.append(f"<p>{inline(' '.join(lead))}</p>")
        if items:
            parts.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
    return "\n".join(parts)


def anchor(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-").lower()


# -- the page -----------------------------------------------------------------------


class Renderer:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.doc = document
        self.schemas: Mapping[str, Any] = document.get("components", {}).get("schemas", {})

    def deref(self, node: Any) -> Any:
        """Follow a local ``$ref`` (for responses and parameters, not schemas)."""
        seen = 0
        while isinstance(node, Mapping) and "$ref" in node and seen < 16:
            target: Any = self.doc
            for part in str(node["$ref"])[2:].split("/"):
                target = target[part]
            node = target
            seen += 1
        return node

    def operations(self) -> list[tuple[str, str, Node]]:
        found = []
        for path, item in self.doc.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    found.append((path, method, item[method]))
        return found

    def page(self) -> str:
        info = self.doc.get("info", {})
        title = html.escape(str(info.get("title", "API")))
        version = html.escape(str(info.get("version", "")))
        by_tag: dict[str, list[tuple[str, str, Node]]] = {}
        for path, method, op in self.operations():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((path, method, op))
        order = [t["name"] for t in self.doc.get("tags", [])] + sorted(by_tag)
        tags = list(dict.fromkeys(t for t in order if t in by_tag))
        toc = []
        body = []
        for tag in tags:
            entries = []
            body.append(f'<section class="card" aria-labelledby="tag-{anchor(tag)}">')
            body.append(f'<h2 id="tag-{anchor(tag)}">{html.escape(tag)}</h2>')
            for path, method, op in by_tag[tag]:
                ident = anchor(method, path)
                summary = inline(str(op.get("summary", "")))
                entries.append(
                    f'<li><a href="#{ident}"><code>{method.upper()} {html.escape(path)}</code>'
                    f"</a> {summary}</li>"
                )
                body.append(self.operation(ident, path, method, op))
            body.append("</section>")
            toc.append(f'<li>{html.escape(tag)}<ul class="operations">{"".join(entries)}</ul></li>')
        schemas = "".join(self.schema_section(name, s) for name, s in self.schemas.items())
        return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · reference</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/css/vestibule.css">
</head>
<body data-page="api-docs">
  <a class="skip-link" href="#main">Skip to content</a>
  <header class="site-header">
    <span class="brand">Vestibule</span>
    <nav aria-label="Main"><a href="/api/openapi.yaml">OpenAPI document (YAML)</a></nav>
  </header>
  <main id="main">
    <h1>{title} <small>{version}</small></h1>
    {prose(info.get("description"))}
    <nav aria-labelledby="toc-title" class="card">
      <h2 id="toc-title">Operations</h2>
      <ul id="toc">{"".join(toc)}</ul>
      <p><a href="#schemas">Schemas</a></p>
    </nav>
    {"".join(body)}
    <section class="card" aria-labelledby="schemas">
      <h2 id="schemas">Schemas</h2>
      {schemas}
    </section>
  </main>
</body>
</html>
"""

    # -- operations ---------------------------------------------------------------

    def operation(self, ident: str, path: str, method: str, op: Node) -> str:
        parts = [
            f'<article class="operation" id="{ident}" data-method="{method.upper()}"'
            f' data-path="{html.escape(path)}">',
            f"<h3><code>{method.upper()} {html.escape(path)}</code></h3>",
            f"<p><strong>{inline(str(op.get('summary', '')))}</strong></p>",
            prose(op.get("description")),
            f"<p>Authentication: {self.security(op)}</p>",
        ]
        item = self.doc["paths"][path]
        params = [self.deref(p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
        if params:
            rows = "".join(
                f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{html.escape(p['in'])}"
                f"</td><td>{self.type_of(p.get('schema', {}))}</td>"
                f"<td>{'yes' if p.get('required') else 'no'}</td>"
                f"<td>{inline(str(p.get('description', '')))}</td></tr>"
                for p in params
            )
            parts.append(
                '<h4>Parameters</h4><div class="table-wrap"><table><thead><tr><th>name</th>'
                "<th>in</th><th>type</th><th>required</th><th>description</th></tr></thead>"
                f"<tbody>{rows}</tbody></table></div>"
            )
        body = op.get("requestBody")
        if body is not None:
            parts.append("<h4>Request body</h4>")
            parts.append(self.media(self.deref(body).get("content", {})))
        parts.append("<h4>Responses</h4><dl>")
        for status, response in op.get("responses", {}).items():
            response = self.deref(response)
            parts.append(
                f"<dt><code>{html.escape(str(status))}</code></dt>"
                f"<dd>{inline(str(response.get('description', '')).strip())}"
                f"{self.media(response.get('content', {}))}</dd>"
            )
        parts.append("</dl></article>")
        return "\n".join(part for part in parts if part)

    def security(self, op: Node) -> str:
        required = op.get("security", self.doc.get("security", []))
        names = [name for requirement in required for name in requirement]
        if not names:
            return "none"
        return " or ".join(f"<code>{html.escape(n)}</code>" for n in names)

    def media(self, content: Node) -> str:
        out = []
        for kind, media in content.items():
            schema = media.get("schema", {})
            out.append(f"<p><code>{html.escape(kind)}</code>: {self.type_of(schema)}</p>")
            out.append(self.fields(schema))
            if "example" in media:
                out.append(self.example("Example", media["example"]))
            for name, named in media.get("examples", {}).items():
                label = str(named.get("summary", name))
                out.append(self.example(f"Example: {label}", named.get("value")))
        return "\n".join(out)

    @staticmethod
    def example(label: str, value: Any) -> str:
        text = json.dumps(value, indent=2, ensure_ascii=False)
        return f'<p>{inline(label)}</p><pre class="example"><code>{html.escape(text)}</code></pre>'

    # -- schemas ------------------------------------------------------------------

    def type_of(self, schema: Any) -> str:
        """A short, linked description of a schema's type."""
        if not isinstance(schema, Mapping):
            return ""
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            return f'<a href="#schema-{anchor(name)}">{html.escape(name)}</a>'
        for key in ("oneOf", "anyOf"):
            if key in schema and "type" not in schema and "properties" not in schema:
                return " | ".join(self.type_of(s) for s in schema[key])
        if "allOf" in schema and "properties" not in schema and "type" not in schema:
            return " and ".join(self.type_of(s) for s in schema["allOf"])
        if "const" in schema:
            return f"<code>{html.escape(json.dumps(schema['const']))}</code>"
        kinds = schema.get("type", "object" if "properties" in schema else "any")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        words = []
        for kind in kinds:
            if kind == "array":
                words.append(f"array of {self.type_of(schema.get('items', {})) or 'any'}")
            else:
                words.append(html.escape(str(kind)))
        text = " | ".join(words)
        if "enum" in schema:
            text += ": one of " + ", ".join(
                f"<code>{html.escape(str(v))}</code>" for v in schema["enum"]
            )
        if "format" in schema:
            text += f" ({html.escape(str(schema['format']))})"
        limits = [
            f"{label} {schema[key]}"
            for key, label in (
                ("minimum", "min"),
                ("maximum", "max"),
                ("minLength", "min length"),
                ("maxLength", "max length"),
                ("minItems", "min items"),
                ("maxItems", "max items"),
            )
            if key in schema
        ]
        if limits:
            text += f" <small>({html.escape(', '.join(limits))})</small>"
        if "default" in schema:
            text += f" <small>default {html.escape(json.dumps(schema['default']))}</small>"
        return text

    def fields(self, schema: Any) -> str:
        """The table of an inline object schema's properties (named schemas link)."""
        if not isinstance(schema, Mapping) or "properties" not in schema:
            return ""
        required = set(schema.get("required", []))
        rows = "".join(
            f"<tr><td><code>{html.escape(name)}</code></td><td>{self.type_of(prop)}</td>"
            f"<td>{'yes' if name in required else 'no'}</td>"
            f"<td>{inline(str(prop.get('description', '')).strip())}"
            f"{self.fields(prop) if prop.get('type') == 'object' else ''}</td></tr>"
            for name, prop in schema["properties"].items()
        )
        return (
            '<div class="table-wrap"><table><thead><tr><th>field</th><th>type</th>'
            f"<th>required</th><th>description</th></tr></thead><tbody>{rows}</tbody>"
            "</table></div>"
        )

    def schema_section(self, name: str, schema: Node) -> str:
        parts = [
            f'<article class="schema" id="schema-{anchor(name)}">',
            f"<h3>{html.escape(name)}</h3>",
            prose(schema.get("description")),
        ]
        if "properties" not in schema or "allOf" in schema:
            parts.append(f"<p>{self.type_of(schema)}</p>")
        parts.append(self.fields(schema))
        parts.append("</article>")
        return "\n".join(part for part in parts if part)
