/*
 * framecast viewer: browse the published runs of one model.
 *
 * Everything is read relative to this page's URL: runs.json (run picker), latest.json (the
 * default run), <run_id>/manifest.json (products, regions, frames). Documents are fetched
 * with cache: "no-store" because they change every cycle while frames never change under a
 * given name. A run's places (manifest "places", names from points/index.json) get a
 * "Places" tab: meteogram, time-height section, soundings and the data files of a place.
 * Neighbouring frames are preloaded so stepping and playing do not flicker, and
 * playback waits for the next frame to be decoded instead of skipping it.
 *
 * A run still arriving upstream is published chunk by chunk (manifest "status": in_progress):
 * the viewer says so, shows the steps published so far and re-reads the manifest every
 * REFRESH seconds (hash option "refresh=<s>", at least 1), adding new steps without
 * interrupting the frame on screen. A run finished without some steps ("incomplete") is
 * flagged with the steps it lacks.
 *
 * Manifests come from the publish target, which may be shared or tampered with: every path
 * taken from them must be a plain relative path below this page (no scheme, no "//", no "..",
 * no leading "/") and run ids must be YYYYMMDDHH, otherwise the entry is refused. index.html
 * also sets a Content-Security-Policy that allows only this site's own files.
 */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const el = {
    title: $("title"), run: $("run"), product: $("product"), region: $("region"),
    status: $("status"), img: $("frame"), slider: $("slider"), play: $("play"),
    prev: $("prev"), next: $("next"), first: $("first"), last: $("last"), speed: $("speed"),
    validtime: $("validtime"), stepinfo: $("stepinfo"), downloads: $("downloads"),
    runinfo: $("runinfo"),
  };
  const PRELOAD_AHEAD = 3;
  const PRELOAD_BEHIND = 1;
  const cache = new Map(); // url -> HTMLImageElement (keeps preloaded frames decoded)
  const state = {
    runs: [], manifest: null, runId: null, product: null, region: null,
    frames: [], index: 0, timer: null, playing: false, refreshTimer: null, refreshMs: 60000,
  };

  const SAFE_PATH = /^[A-Za-z0-9_][A-Za-z0-9._+\-]*(\/[A-Za-z0-9_][A-Za-z0-9._+\-]*)*$/;
  const RUN_ID = /^[0-9]{10}$/;

  function safePath(p, what) {
    if (typeof p !== "string" || !SAFE_PATH.test(p) || p.split("/").includes("..")) {
      throw new Error("refusing unsafe " + what + " in the published data: " + JSON.stringify(p));
    }
    return p;
  }

  function safeRunId(id) {
    if (typeof id !== "string" || !RUN_ID.test(id)) {
      throw new Error("refusing unsafe run id in the published data: " + JSON.stringify(id));
    }
    return id;
  }

  function safeSha(sha) {
    return typeof sha === "string" && /^[0-9a-f]{12,64}$/.test(sha) ? sha : "";
  }

  async function getJSON(url) {
    const resp = await fetch(url, { cache: "no-store" });
    if (!resp.ok) throw new Error(url + ": HTTP " + resp.status);
    return resp.json();
  }

  function setStatus(text, cls) {
    el.status.textContent = text;
    el.status.className = cls || "";
  }

  function readHash() {
    const out = {};
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      const [k, v] = part.split("=");
      if (k) out[decodeURIComponent(k)] = decodeURIComponent(v || "");
    }
    return out;
  }

  function writeHash() {
    const frame = state.frames[state.index];
    const parts = [["run", state.runId], ["product", state.product], ["region", state.region]];
    if (frame) parts.push(["step", String(frame.step)]);
    if (state.refreshMs !== 60000) parts.push(["refresh", String(state.refreshMs / 1000)]);
    if (state.tab === "places") {
      parts.push(["tab", "places"], ["place", state.place || ""]);
      if (pl.sounding.value) parts.push(["sounding", pl.sounding.value]);
    }
    const hash = "#" + parts.map(([k, v]) => k + "=" + encodeURIComponent(v || "")).join("&");
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  function fillSelect(select, values, labels, wanted) {
    select.innerHTML = "";
    values.forEach((v, i) => {
      const opt = document.createElement("option");
      opt.value = v;
      opt.textContent = labels ? labels[i] : v;
      select.appendChild(opt);
    });
    select.value = values.includes(wanted) ? wanted : values[0] || "";
    return select.value;
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function fmtTime(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso || "";
    const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    return days[d.getUTCDay()] + " " + d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) +
      "-" + pad(d.getUTCDate()) + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) +
      " UTC";
  }

  // Manifests before run states existed carry only "complete".
  function runStatus(doc) {
    if (doc && ["in_progress", "complete", "incomplete"].includes(doc.status)) return doc.status;
    return doc && doc.complete ? "complete" : "in_progress";
  }

  function runLabel(r) {
    const suffix = { complete: "", in_progress: " (in progress)", incomplete: " (incomplete)" };
    return r.run_id.slice(0, 8) + " " + r.run_id.slice(8) + "Z" + suffix[runStatus(r)];
  }

  function stepList(steps) {
    return (steps || []).map((s) => "+" + Number(s)).join(", ");
  }

  function showRunStatus() {
    const m = state.manifest;
    const status = runStatus(m);
    const steps = (m.steps || []).map(Number);
    const expected = (m.expected_steps || []).map(Number);
    if (status === "complete") {
      setStatus("");
    } else if (status === "incomplete") {
      setStatus("Incomplete run: step(s) " + stepList(m.missing_steps) +
        " never arrived upstream; the other steps are shown.", "incomplete");
    } else if (expected.length) {
      setStatus("This run is still being published: " + steps.length + " of " +
        expected.length + " steps so far (up to +" + Math.max(-1, ...steps) + " h), in progress;" +
        " the page checks for new steps every " + Math.round(state.refreshMs / 1000) + " s.",
      "partial");
    } else {
      setStatus("This run is still being published: more products will follow.", "partial");
    }
    const opt = [...el.run.options].find((o) => o.value === state.runId);
    if (opt) opt.textContent = runLabel({ run_id: state.runId, status: status });
  }

  // The checksum in the query makes each URL immutable: a frame rendered again under the
  // same name gets a new URL, so browser and proxy caches can never show a stale chart.
  function frameUrl(frame) {
    const sha = safeSha(frame.sha256);
    const v = sha ? "?v=" + sha.slice(0, 12) : "";
    return safeRunId(state.runId) + "/" + safePath(frame.file, "file name") + v;
  }

  function preload(url) {
    let img = cache.get(url);
    if (!img) {
      img = new Image();
      img.decoding = "async";
      img.src = url;
      cache.set(url, img);
      if (cache.size > 400) cache.delete(cache.keys().next().value);
    }
    return img;
  }

  function preloadAround(i) {
    const n = state.frames.length;
    for (let d = -PRELOAD_BEHIND; d <= PRELOAD_AHEAD; d++) {
      if (d !== 0 && n > 0) {
        try {
          preload(frameUrl(state.frames[(i + d + n) % n]));
        } catch (err) { /* refused when shown */ }
      }
    }
  }

  function show(i) {
    const n = state.frames.length;
    if (!n) return;
    state.index = ((i % n) + n) % n;
    const frame = state.frames[state.index];
    let url;
    try {
      url = frameUrl(frame);
    } catch (err) {
      el.img.dataset.loaded = "refused";
      el.img.removeAttribute("src");
      setStatus(err.message, "error");
      return;
    }
    preload(url);
    el.img.dataset.loaded = "0";
    el.img.dataset.step = String(frame.step);
    el.img.src = url;
    el.img.alt = state.product + " " + state.region + " +" + frame.step + " h";
    el.slider.value = String(state.index);
    el.validtime.textContent = fmtTime(frame.valid_time);
    el.stepinfo.textContent = "+" + frame.step + " h  (" + (state.index + 1) + "/" + n + ")";
    writeHash();
    preloadAround(state.index);
  }

  el.img.addEventListener("load", () => { el.img.dataset.loaded = "1"; });
  el.img.addEventListener("error", () => {
    el.img.dataset.loaded = "error";
    setStatus("Frame missing: " + el.img.getAttribute("src"), "error");
  });

  function stop() {
    state.playing = false;
    clearTimeout(state.timer);
    el.play.classList.remove("playing");
    el.play.innerHTML = "&#x25B6;";
  }

  function tick() {
    if (!state.playing) return;
    const n = state.frames.length;
    const next = preload(frameUrl(state.frames[(state.index + 1) % n]));
    const advance = () => {
      if (!state.playing) return;
      show(state.index + 1);
      state.timer = setTimeout(tick, Number(el.speed.value));
    };
    if (next.complete) advance();
    else next.addEventListener("load", advance, { once: true });
  }

  function play() {
    if (state.frames.length < 2) return;
    state.playing = true;
    el.play.classList.add("playing");
    el.play.innerHTML = "&#x25AE;&#x25AE;";
    state.timer = setTimeout(tick, Number(el.speed.value));
  }

  function togglePlay() { state.playing ? stop() : play(); }

  function showDownloads(videos) {
    el.downloads.innerHTML = "";
    for (const [kind, entry] of Object.entries(videos || {})) {
      let href;
      try {
        href = frameUrl(entry);
      } catch (err) {
        setStatus(err.message, "error");
        continue;
      }
      const a = document.createElement("a");
      a.href = href;
      a.textContent = kind.toUpperCase() + " (" + Math.round(entry.size / 1024) + " kB)";
      a.download = "";
      el.downloads.appendChild(a);
    }
  }

  function selectRegion(wantedStep) {
    const prod = state.manifest.products[state.product];
    const reg = prod.regions[state.region];
    state.frames = (reg.frames || []).slice().sort((a, b) => a.step - b.step);
    el.slider.max = String(Math.max(0, state.frames.length - 1));
    showDownloads(reg.videos);
    let idx = state.frames.findIndex((f) => String(f.step) === String(wantedStep));
    if (idx < 0) idx = Math.min(state.index, state.frames.length - 1);
    show(Math.max(0, idx));
  }

  function selectProduct(wantedRegion, wantedStep) {
    const regions = Object.keys(state.manifest.products[state.product].regions).sort();
    state.region = fillSelect(el.region, regions, null, wantedRegion || state.region);
    selectRegion(wantedStep);
  }

  // -- Places: meteogram, time-height section and soundings per place --------------------
  const pl = {
    tabs: $("tabs"), tabMaps: $("tab-maps"), tabPlaces: $("tab-places"), maps: $("maps"),
    section: $("places"), place: $("place"), sounding: $("sounding"), info: $("placeinfo"),
    files: $("placefiles"), meteogram: $("meteogram"), sectionImg: $("section"),
    soundingImg: $("soundingimg"),
  };
  state.tab = "maps";
  state.place = null;
  state.placeNames = {};

  function showTab(tab) {
    state.tab = tab === "places" && !pl.tabs.hidden ? "places" : "maps";
    const places = state.tab === "places";
    pl.section.hidden = !places;
    pl.maps.hidden = places;
    pl.tabMaps.setAttribute("aria-selected", String(!places));
    pl.tabPlaces.setAttribute("aria-selected", String(places));
    for (const id of ["product", "region"]) $(id).closest("label").hidden = places;
    if (places) stop();
    writeHash();
  }

  function setImage(img, entry) {
    img.dataset.loaded = "0";
    if (!entry) { img.hidden = true; img.removeAttribute("src"); return; }
    img.hidden = false;
    img.src = frameUrl(entry);
  }
  for (const img of [pl.meteogram, pl.sectionImg, pl.soundingImg]) {
    img.addEventListener("load", () => { img.dataset.loaded = "1"; });
    img.addEventListener("error", () => { img.dataset.loaded = "error"; });
  }

  function showSounding() {
    const place = (state.manifest.places || {})[state.place] || {};
    const entry = (place.soundings || []).find((s) => String(s.step) === pl.sounding.value);
    setImage(pl.soundingImg, entry);
    writeHash();
  }

  function selectPlace(slug, wantedStep) {
    const places = state.manifest.places || {};
    state.place = slug in places ? slug : Object.keys(places)[0];
    pl.place.value = state.place;
    const place = places[state.place] || {};
    setImage(pl.meteogram, place.meteogram);
    setImage(pl.sectionImg, place.section);
    const snd = (place.soundings || []).slice().sort((a, b) => a.step - b.step);
    fillSelect(pl.sounding, snd.map((s) => String(s.step)),
      snd.map((s) => "+" + s.step + " h (" + fmtTime(s.valid_time) + ")"),
      wantedStep != null ? String(wantedStep) : pl.sounding.value);
    pl.sounding.closest("label").hidden = !snd.length;
    pl.files.innerHTML = "";
    for (const kind of ["csv", "json"]) {
      if (!place[kind]) continue;
      const a = document.createElement("a");
      a.href = frameUrl(place[kind]);
      a.textContent = kind.toUpperCase();
      a.download = "";
      pl.files.appendChild(a);
    }
    const meta = state.placeNames[state.place];
    pl.info.textContent = meta ? meta.lat.toFixed(2) + "°N " + meta.lon.toFixed(2) + "°E, " + meta.tz : "";
    showSounding();
  }

  async function loadPlaces(wanted) {
    const places = state.manifest.places || {};
    const slugs = Object.keys(places);
    pl.tabs.hidden = !slugs.length;
    state.placeNames = {};
    if (state.manifest.places_index) {
      try {
        const index = await getJSON(state.runId + "/" + state.manifest.places_index);
        for (const p of index.places || []) state.placeNames[p.slug] = p;
      } catch (err) { /* slugs as names */ }
    }
    const label = (s) => (state.placeNames[s] ? state.placeNames[s].name : s);
    slugs.sort((a, b) => label(a).localeCompare(label(b)));
    fillSelect(pl.place, slugs, slugs.map(label), wanted.place || state.place);
    if (slugs.length) selectPlace(pl.place.value, wanted.sounding);
    showTab(slugs.length && (wanted.tab === "places" || !Object.keys(state.manifest.products).length)
      ? "places" : (wanted.tab || state.tab));
  }

  pl.tabMaps.addEventListener("click", () => showTab("maps"));
  pl.tabPlaces.addEventListener("click", () => showTab("places"));
  pl.place.addEventListener("change", () => selectPlace(pl.place.value));
  pl.sounding.addEventListener("change", showSounding);

  function manifestUrl(runId) {
    const entry = state.runs.find((r) => r.run_id === runId);
    return entry && entry.manifest ? safePath(entry.manifest, "manifest path")
      : safeRunId(runId) + "/manifest.json";
  }

  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    if (runStatus(state.manifest) === "in_progress") {
      state.refreshTimer = setTimeout(guarded(refreshRun), state.refreshMs);
    }
  }

  // New steps of a run in progress join the slider; the frame on screen stays as it is.
  async function refreshRun() {
    const runId = state.runId;
    const doc = await getJSON(manifestUrl(runId));
    if (runId !== state.runId) return; // another run was picked meanwhile
    if (doc.published_at !== state.manifest.published_at ||
        runStatus(doc) !== runStatus(state.manifest)) {
      state.manifest = doc;
      const names = Object.keys(doc.products).sort();
      if (names.length) {
        state.product = fillSelect(el.product, names, null, state.product);
        const regions = Object.keys(doc.products[state.product].regions).sort();
        const region = fillSelect(el.region, regions, null, state.region);
        const current = state.frames[state.index];
        if (!current || region !== state.region) {
          state.region = region;
          selectRegion(current ? current.step : null);
        } else {
          const reg = doc.products[state.product].regions[state.region];
          state.frames = (reg.frames || []).slice().sort((a, b) => a.step - b.step);
          state.index = Math.max(0, state.frames.findIndex((f) => f.step === current.step));
          el.slider.max = String(Math.max(0, state.frames.length - 1));
          el.slider.value = String(state.index);
          el.stepinfo.textContent = "+" + current.step + " h  (" + (state.index + 1) + "/" +
            state.frames.length + ")";
          showDownloads(reg.videos);
        }
      }
      el.runinfo.textContent = "Run " + fmtTime(doc.run) + ", published " +
        fmtTime(doc.published_at) + ".";
      showRunStatus();
    }
    scheduleRefresh();
  }

  async function loadRun(runId, wanted) {
    stop();
    clearTimeout(state.refreshTimer);
    const url = manifestUrl(runId);
    setStatus("Loading run " + runId + "…");
    state.manifest = await getJSON(url);
    state.runId = safeRunId(state.manifest.run_id);
    const names = Object.keys(state.manifest.products).sort();
    const hasPlaces = Object.keys(state.manifest.places || {}).length > 0;
    if (!names.length && !hasPlaces) throw new Error("run " + runId + " has no products yet");
    state.product = fillSelect(el.product, names, null, wanted.product || state.product);
    el.title.textContent = state.manifest.model;
    document.title = state.manifest.model + " " + state.runId + " – framecast";
    el.runinfo.textContent = "Run " + fmtTime(state.manifest.run) + ", published " +
      fmtTime(state.manifest.published_at) + ".";
    showRunStatus();
    if (names.length) selectProduct(wanted.region, wanted.step);
    await loadPlaces(wanted);
    scheduleRefresh();
  }

  async function init() {
    const wanted = readHash();
    const refresh = Number(wanted.refresh);
    if (refresh >= 1) state.refreshMs = refresh * 1000;
    let latest = null;
    try {
      const runs = await getJSON("runs.json");
      state.runs = (runs.runs || []).filter((r) => r && typeof r.run_id === "string" && RUN_ID.test(r.run_id));
      latest = runs.latest;
    } catch (err) {
      state.runs = [];
    }
    if (!latest) {
      try {
        const doc = await getJSON("latest.json");
        latest = doc.run_id;
        if (!state.runs.length) state.runs = [{ run_id: doc.run_id, complete: true, manifest: doc.manifest }];
      } catch (err) { /* fall through to the newest listed run */ }
    }
    if (!state.runs.length && !latest) {
      setStatus("No published runs found next to this page.", "error");
      return;
    }
    const ids = state.runs.map((r) => r.run_id);
    const start = ids.includes(wanted.run) ? wanted.run : latest || ids[0];
    fillSelect(el.run, ids, state.runs.map(runLabel), start);
    await loadRun(start, wanted);
  }

  function guarded(fn) {
    return (...args) => Promise.resolve(fn(...args)).catch((err) => setStatus(String(err.message || err), "error"));
  }

  el.run.addEventListener("change", guarded(() => loadRun(el.run.value, {})));
  el.product.addEventListener("change", () => {
    state.product = el.product.value;
    const step = state.frames[state.index] ? state.frames[state.index].step : null;
    selectProduct(state.region, step);
  });
  el.region.addEventListener("change", () => {
    state.region = el.region.value;
    const step = state.frames[state.index] ? state.frames[state.index].step : null;
    selectRegion(step);
  });
  el.slider.addEventListener("input", () => { stop(); show(Number(el.slider.value)); });
  el.play.addEventListener("click", togglePlay);
  el.prev.addEventListener("click", () => { stop(); show(state.index - 1); });
  el.next.addEventListener("click", () => { stop(); show(state.index + 1); });
  el.first.addEventListener("click", () => { stop(); show(0); });
  el.last.addEventListener("click", () => { stop(); show(state.frames.length - 1); });
  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.tagName === "SELECT") return;
    const keys = {
      ArrowLeft: () => { stop(); show(state.index - 1); },
      ArrowRight: () => { stop(); show(state.index + 1); },
      Home: () => { stop(); show(0); },
      End: () => { stop(); show(state.frames.length - 1); },
      " ": togglePlay,
    };
    if (keys[ev.key]) {
      ev.preventDefault();
      keys[ev.key]();
    }
  });

  guarded(init)();
})();
