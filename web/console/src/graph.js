// The pipeline graph of the headrace console: reads the page's graph data (JSON in a
// <script type="application/json" id="graph-data"> element), lays it out with dagre and draws
// it as SVG into #graph. Every node is a link (keyboard-focusable) to the object's row in the
// instance grid. Nothing here fetches anything: the data is in the page.
import dagre from "@dagrejs/dagre";

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function nodeSize(node) {
  const chars = Math.max(node.label.length, node.type.length + 2);
  return { width: Math.min(260, 24 + chars * 7.2), height: 44 };
}

export function layout(data) {
  const g = new dagre.graphlib.Graph({ multigraph: true, compound: true });
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 60, edgesep: 8, marginx: 8, marginy: 22 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of data.nodes) {
    g.setNode(node.id, { ...nodeSize(node), data: node });
    if (node.group) {
      const cluster = `workerGroup:${node.group}`;
      if (!g.hasNode(cluster)) g.setNode(cluster, { cluster: node.group });
      g.setParent(node.id, cluster);
    }
  }
  data.edges.forEach((edge, i) => {
    if (g.hasNode(edge.from) && g.hasNode(edge.to)) {
      g.setEdge(edge.from, edge.to, { label: edge.kind, data: edge }, `e${i}`);
    }
  });
  dagre.layout(g);
  return g;
}

function draw(host, data) {
  const g = layout(data);
  const info = g.graph();
  const svg = el("svg", {
    viewBox: `0 0 ${Math.ceil(info.width || 10)} ${Math.ceil(info.height || 10)}`,
    width: Math.ceil(info.width || 10), role: "img",
    "aria-label": `Pipeline graph: ${data.nodes.length} objects, ${data.edges.length} edges`,
  });
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }, marker);
  for (const id of g.nodes()) {
    const n = g.node(id);
    if (!n.cluster) continue;
    const box = el("g", { class: "cluster", "data-id": id, "data-members": g.children(id).length }, svg);
    el("rect", { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height, rx: 6 }, box);
    // the label sits just above the box, in the gap dagre leaves between boxes
    const label = el("text", { x: n.x - n.width / 2 + 4, y: n.y - n.height / 2 - 5, class: "cluster-label" }, box);
    label.textContent = `workerGroup: ${n.cluster}`;
  }
  for (const e of g.edges()) {
    const edge = g.edge(e);
    const points = edge.points || [];
    if (!points.length) continue;
    const d = points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    const path = el("path", { d, class: `edge edge-${edge.data.kind}`, "marker-end": "url(#arrow)",
      "data-from": edge.data.from, "data-to": edge.data.to, "data-kind": edge.data.kind }, svg);
    el("title", {}, path).textContent = `${edge.data.from} ${edge.data.kind} ${edge.data.to}`;
  }
  for (const id of g.nodes()) {
    const n = g.node(id);
    const node = n.data;
    if (!node) continue;  // a worker group's box, drawn above
    const link = el("a", { href: node.href || "#", class: `node cat-${node.category}`,
      "data-id": node.id, "data-status": node.status || "", tabindex: 0 }, svg);
    el("title", {}, link).textContent =
      `${node.label} (${node.type})${node.status ? ": " + node.status : ""}`;
    el("rect", { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height,
      rx: node.category === "datanode" ? 14 : 4 }, link);
    const name = el("text", { x: n.x, y: n.y - 3, "text-anchor": "middle", class: "label" }, link);
    name.textContent = node.label.length > 34 ? node.label.slice(0, 33) + "…" : node.label;
    const type = el("text", { x: n.x, y: n.y + 13, "text-anchor": "middle", class: "type" }, link);
    type.textContent = node.type;
  }
  host.replaceChildren(svg);
  host.dataset.laidOut = String(data.nodes.length);
}

function start() {
  const host = document.getElementById("graph");
  const source = document.getElementById("graph-data");
  if (!host || !source) return;
  draw(host, JSON.parse(source.textContent || '{"nodes":[],"edges":[]}'));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
