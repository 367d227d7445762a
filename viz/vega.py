"""An interactive Vega-Lite chart whose data change without redrawing the chart.

:class:`VegaChart` is a widget that embeds a Vega-Lite spec once (with vega-embed, served offline
by Solara's assets) and afterwards only replaces the values of its named data sets, which the
browser redraws in a few milliseconds: a press of Step sends a few hundred rows, not a new chart.
Hovering shows values (vega-tooltip); the chart's menu saves it as SVG or PNG. Colours written
``"@name"`` in the spec are taken from ``usermeta.palettes`` for the page's light or dark theme, and
the chart is drawn again when the theme changes. When a new set of
values has been drawn, the chart's element carries ``data-revision`` equal to the widget's
``revision``, so that tests and the click-to-chart benchmark can tell when the chart is up to date.
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipyvuetify as v
import numpy as np
import pandas as pd
import solara
import traitlets

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.2.0.json"  # Solara's assets

TEMPLATE = """
<template>
  <div :class="css_class"><div ref="plot" style="width: 100%"></div></div>
</template>
<script>
module.exports = {
  mounted() {
    this.ready = this.loadVega().then(() => this.embed());
  },
  destroyed() {
    // the chart may leave the page (a tab switch) while vega is still loading: every
    // asynchronous step below checks ``gone`` before it touches the element
    this.gone = true;
    if (this.observer) { this.observer.disconnect(); }
    if (this.view) { this.view.finalize(); this.view = null; }
  },
  computed: {
    dark() { return Boolean(this.$vuetify && this.$vuetify.theme.dark); },
  },
  watch: {
    spec_text() { this.ready = this.ready.then(() => this.embed()); },
    dark() { this.ready = this.ready.then(() => this.embed()); },
    data_text() { this.ready = this.ready.then(() => this.update()); },
  },
  methods: {
    async embed() {
      if (this.view) { this.view.finalize(); this.view = null; }
      const vegaEmbed = await new Promise((resolve, reject) => {
        require(['vega-embed'], resolve, reject);
      });
      if (this.gone) { return; }
      const options = {
        renderer: 'svg',
        actions: {export: true, source: false, compiled: false, editor: false},
        downloadFileName: this.name || 'chart',
        scaleFactor: 2,
      };
      const spec = this.themed(JSON.parse(this.spec_text));
      spec.datasets = Object.assign({}, spec.datasets || {}, JSON.parse(this.data_text));
      const result = await vegaEmbed(this.$refs.plot, spec, options);
      if (this.gone) { result.view.finalize(); return; }
      this.view = result.view;
      if (!this.observer) {
        this.observer = new ResizeObserver(() => { if (this.view) { this.view.resize(); } });
        this.observer.observe(this.$refs.plot);
      }
      await this.update();
    },
    themed(spec) {
      // "@name" strings are colours of the page's theme, from usermeta.palettes
      const palettes = (spec.usermeta || {}).palettes;
      if (!palettes) { return spec; }
      const palette = palettes[this.dark ? 'dark' : 'light'];
      const walk = (node) => {
        if (typeof node === 'string') {
          return node.startsWith('@') && node.slice(1) in palette ? palette[node.slice(1)] : node;
        }
        if (Array.isArray(node)) { return node.map(walk); }
        if (node && typeof node === 'object') {
          const out = {};
          for (const [key, value] of Object.entries(node)) { out[key] = walk(value); }
          return out;
        }
        return node;
      };
      const out = walk(spec);
      out.usermeta.embedOptions = {tooltip: {theme: this.dark ? 'dark' : 'light'}};
      return out;
    },
    async update() {
      if (this.gone || !this.view) { return; }
      for (const [name, rows] of Object.entries(JSON.parse(this.data_text))) {
        this.view.data(name, rows);
      }
      await this.view.runAsync();
      if (this.gone) { return; }
      this.$el.dataset.revision = this.revision;
    },
    async loadVega() {
      await this.loadRequire();
      const cdn = this.getCdn();
      const lib = this.libraries;
      require.config({
        map: {
          '*': {
            'vega': `${cdn}/${lib.vega}/build/vega.min.js`,
            'vega-lite': `${cdn}/${lib['vega-lite']}/build/vega-lite.min.js`,
            'vega-embed': `${cdn}/${lib['vega-embed']}/build/vega-embed.min.js`,
          }
        }
      });
      await new Promise((resolve, reject) => {
        require(['vega', 'vega-lite', 'vega-embed'], () => resolve(), reject);
      });
    },
    loadRequire() {
      if (window.requirejs) { return Promise.resolve(); }
      return new Promise((resolve, reject) => {
        const script = document.createElement('script');
        script.src = `${this.getCdn()}/requirejs@2.3.6/require.js`;
        script.onload = resolve;
        script.onerror = reject;
        document.head.appendChild(script);
      });
    },
    getCdn() {
      if (window.solara && window.solara.cdn) { return window.solara.cdn; }
      let base = document.body.dataset.baseUrl || document.baseURI;
      if (!base.endsWith('/')) { base += '/'; }
      return `${base}_solara/cdn`;
    },
  },
}
</script>
"""


class VegaChart(v.VuetifyTemplate):
    """A Vega-Lite chart: the spec (JSON text) is embedded once; the data sets (JSON text, an
    object of name → rows) are streamed."""

    @property
    def spec(self) -> dict[str, Any]:
        """The spec, parsed."""
        return json.loads(self.spec_text)

    @property
    def datasets(self) -> dict[str, list[dict[str, Any]]]:
        """The data sets, parsed."""
        return json.loads(self.data_text)

    template = traitlets.Unicode(TEMPLATE).tag(sync=True)
    spec_text = traitlets.Unicode("{}").tag(sync=True)
    data_text = traitlets.Unicode("{}").tag(sync=True)
    revision = traitlets.Unicode("").tag(sync=True)
    name = traitlets.Unicode("chart").tag(sync=True)
    css_class = traitlets.Unicode("").tag(sync=True)
    libraries = traitlets.Dict().tag(sync=True)

    @traitlets.default("libraries")
    def _libraries(self) -> dict[str, str]:
        return vega_libraries()


def vega_libraries() -> dict[str, str]:
    """``name@version`` of vega, vega-lite and vega-embed as Solara's offline assets hold them
    (a bare major version, which only an online proxy resolves, where they are not found)."""
    from solara.server.settings import assets

    found = {}
    for library, major in (("vega", "5"), ("vega-lite", "5"), ("vega-embed", "6")):
        versions = sorted(
            (p.name for p in Path(assets.proxy_cache_dir).glob(f"{library}@{major}.*")),
            key=lambda name: tuple(int(x) for x in re.findall(r"\d+", name.split("@")[1])),
        )
        found[library] = versions[-1] if versions else f"{library}@{major}"
    return found


def records_json(frame: pd.DataFrame) -> str:
    """Rows of a frame as a JSON array of objects; NaN and infinities become null (a gap)."""
    columns = []
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype.kind == "f":
            finite = np.isfinite(values)
            column = values.tolist()
            if not finite.all():
                column = [x if ok else None for x, ok in zip(column, finite.tolist(), strict=True)]
        else:
            column = values.tolist()
        columns.append(column)
    names = [str(name) for name in frame.columns]
    rows = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    return json.dumps(rows, separators=(",", ":"), allow_nan=False)


def spec_json(spec: dict[str, Any]) -> str:
    """A spec as JSON text (cached specs are sent as text, which the page's renderer does not
    walk through on every render, unlike a nested dict)."""
    return json.dumps(spec, separators=(",", ":"), allow_nan=False)


@solara.component
def Chart(
    spec: dict[str, Any] | str,
    datasets: Mapping[str, pd.DataFrame],
    revision: str,
    name: str,
) -> None:
    """A :class:`VegaChart` in the page, tagged ``nplsim-chart nplsim-<name>``."""
    text = spec if isinstance(spec, str) else spec_json(spec)
    data = "{" + ",".join(f"{json.dumps(k)}:{records_json(v)}" for k, v in datasets.items()) + "}"
    VegaChart.element(
        spec_text=text,
        data_text=data,
        revision=revision,
        name=name,
        css_class=f"nplsim-chart nplsim-{name}",
    )
