#!/usr/bin/env python3
"""FluoroStream viewer: subscribes to a publisher and shows the annotated stream in a window with its measurements
(frame, latency, motion, wire and catheter tips, roadmap state).

Works with the default stream (raw RGB frames), with `--jpeg` streams and, with `--layers`, with the publisher's
layers mode (it then renders the grey frame, the devices and the roadmap itself), plain or CURVE. Toggles (keys):
`m` the measurements panel, `c` centre lines and tips redrawn from the measurements (magenta), and in layers mode
`d` the devices layer and `r` the roadmap layer; `q` quits. `--log FILE` records every header received as one JSON line; `--screenshot PNG --frames N` saves the
window after N frames and exits (used by the test under Xvfb).

Usage: tools/clients/viewer.py [tcp://127.0.0.1:5555] [--curve-secret me.key_secret --curve-server server.key]
"""
import argparse
import json
import time
import tkinter

import cv2
import numpy as np
import zmq
import zmq.auth
from PIL import Image, ImageDraw, ImageGrab, ImageTk


class Viewer:
    def __init__(self, options):
        self.options = options
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        if options.curve_secret:
            public, secret = zmq.auth.load_certificate(options.curve_secret)
            server, _ = zmq.auth.load_certificate(options.curve_server)
            self.socket.curve_publickey, self.socket.curve_secretkey, self.socket.curve_serverkey = public, secret, server
        self.socket.setsockopt(zmq.RCVHWM, 6 if options.layers else 2)
        for topic in (b"frame", b"devices", b"roadmap") if options.layers else (b"",):
            self.socket.setsockopt(zmq.SUBSCRIBE, topic)
        self.socket.connect(options.address)
        self.log = open(options.log, "w") if options.log else None
        self.received, self.lost, self.last_sequence = 0, 0, None
        self.show_panel, self.show_lines = True, False
        self.show_devices, self.show_roadmap = True, True
        self.layers, self.layer_index, self.window = {}, None, None
        self.finishing = False

        self.root = tkinter.Tk()
        self.root.title(f"FluoroStream viewer: {options.address}")
        self.root.configure(background="black")
        self.picture = tkinter.Label(self.root, background="black", borderwidth=0)
        self.picture.grid(row=0, column=0)
        self.panel = tkinter.Label(self.root, justify="left", anchor="nw", font=("DejaVu Sans Mono", 11),
                                   foreground="#e0e0e0", background="#202020", width=34, padx=8, pady=8)
        self.panel.grid(row=0, column=1, sticky="ns")
        self.panel.configure(text=f"waiting for frames from\n{options.address}")
        self.root.bind("m", lambda _: self.toggle_panel())
        self.root.bind("c", lambda _: self.toggle_lines())
        self.root.bind("d", lambda _: setattr(self, "show_devices", not self.show_devices))
        self.root.bind("r", lambda _: setattr(self, "show_roadmap", not self.show_roadmap))
        self.root.bind("q", lambda _: self.close())
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        self.image = None
        self.root.after(10, self.poll)

    def toggle_panel(self):
        self.show_panel = not self.show_panel
        if self.show_panel:
            self.panel.grid()
        else:
            self.panel.grid_remove()

    def toggle_lines(self):
        self.show_lines = not self.show_lines

    def poll(self):
        newest = None
        while self.socket.poll(0):
            parts = self.socket.recv_multipart()
            if json.loads(parts[-2]).get("end_of_stream"):
                continue  # the publisher's end-of-stream message: no frame
            if len(parts) == 3:
                self.collect_layer(*parts)
                continue
            if self.has_enough_frames():
                continue
            newest = parts  # show the newest frame; older ones in the queue are skipped
            self.count(newest[0])
        if newest is not None:
            self.show(*newest)
        elif self.layers.get("frame") and self.layers.get("devices"):
            self.show_layers()
        if self.has_enough_frames() and not self.finishing:
            # The last frame's other layers may still be on their way: keep collecting them until the screenshot.
            self.finishing = True
            self.root.after(300, self.finish)
        self.root.after(5, self.poll)

    def has_enough_frames(self):
        return bool(self.options.frames) and self.received >= self.options.frames

    def count(self, header):
        meta = json.loads(header)
        self.received += 1
        if self.last_sequence is not None and meta["sequence"] > self.last_sequence + 1:
            self.lost += meta["sequence"] - self.last_sequence - 1
        self.last_sequence = meta["sequence"]
        if self.log:
            self.log.write(header.decode("utf-8") + "\n")

    def collect_layer(self, topic, header, payload):
        """Layers mode: keep the newest frame's layers (a new frame index starts a new set)."""
        meta = json.loads(header)
        if meta["frame"] != self.layer_index:
            if self.has_enough_frames():
                return  # a frame after the last one asked for
            self.layer_index, self.layers = meta["frame"], {}
        self.layers[topic.decode()] = (meta, np.frombuffer(payload, dtype=meta["dtype"]).reshape(meta["shape"]))
        if topic == b"frame":
            self.count(header)

    def show_layers(self):
        """Composes the picture from the layers: the grey frame through a window fixed on the first frame (0.5th
        to 99.5th percentile), the devices in yellow (wire) and cyan (catheter), the roadmap in red-orange."""
        meta, grey = self.layers["frame"]
        if self.window is None:
            low, high = np.percentile(grey, [0.5, 99.5])
            self.window = (float(low), max(float(high - low), 1.0))
        level = np.clip((grey.astype(np.float32) - self.window[0]) / self.window[1] * 255, 0, 255)
        rgb = np.repeat(level[:, :, None], 3, axis=2)
        if self.show_roadmap and "roadmap" in self.layers:
            alpha = self.layers["roadmap"][1][:, :, None].astype(np.float32) / 255 * 0.45
            rgb = rgb * (1 - alpha) + np.array([255, 90, 40], np.float32) * alpha
        if self.show_devices:
            devices = self.layers["devices"][1]
            rgb[devices == 1] = (255, 230, 0)
            rgb[devices == 2] = (0, 220, 255)
        arrived = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self.display(Image.fromarray(rgb.astype(np.uint8)), meta, (arrived - meta["published_ns"]) / 1e6)

    def show(self, header, payload):
        meta = json.loads(header)
        arrived = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if meta.get("encoding") == "jpeg":
            rgb = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        else:
            rgb = np.frombuffer(payload, np.uint8).reshape(meta["shape"])
        self.display(Image.fromarray(np.ascontiguousarray(rgb)), meta, (arrived - meta["published_ns"]) / 1e6)

    def display(self, picture, meta, transit_ms):
        if self.show_lines:
            draw = ImageDraw.Draw(picture)
            for device in ("catheter", "guidewire"):
                trace = meta[device]
                if trace["present"] and len(trace["centerline"]) > 1:
                    draw.line([tuple(p) for p in trace["centerline"]], fill=(255, 0, 255), width=1)
                    x, y = trace["tip"]
                    draw.ellipse([x - 4, y - 4, x + 4, y + 4], outline=(255, 0, 255))
        self.image = ImageTk.PhotoImage(picture)
        self.picture.configure(image=self.image)
        self.panel.configure(text=self.describe(meta, transit_ms))

    def describe(self, meta, transit_ms):
        motion, roadmap = meta["motion"], meta["roadmap"]
        lines = [f"frame      {meta['frame']}", f"received   {self.received} (lost {self.lost})",
                 f"age        {meta['latency_ms']['age_at_publish']:.1f} ms at publish",
                 f"transit    {transit_ms:.1f} ms", "",
                 f"motion     {motion['state']}", f"  shift    ({motion['dx']:.2f}, {motion['dy']:.2f}) px",
                 f"  confid.  {motion['confidence']:.2f}", ""]
        for device in ("guidewire", "catheter"):
            trace = meta[device]
            tip = trace["tip"]
            lines.append(f"{device:10s} " + (f"tip ({tip[0]:.1f}, {tip[1]:.1f})" if trace["present"] else "not found"))
        lines += ["", f"roadmap    {roadmap['state']}" + (" (drawn)" if roadmap["drawn"] else ""),
                  f"encoding   {meta.get('encoding', 'raw')}" + (" layers" if self.options.layers else ""), "",
                  "keys: m panel, c lines, " + ("d devices, r roadmap, " if self.options.layers else "") + "q quit"]
        return "\n".join(lines)

    def finish(self):
        if self.options.screenshot:
            self.root.update()
            x, y = self.root.winfo_rootx(), self.root.winfo_rooty()
            width, height = self.root.winfo_width(), self.root.winfo_height()
            ImageGrab.grab(bbox=(x, y, x + width, y + height), xdisplay=self.root.winfo_screen() or None).save(
                self.options.screenshot)
        self.close()

    def close(self):
        print(f"{self.options.address}: {self.received} frames received, {self.lost} lost")
        if self.log:
            self.log.close()
        self.socket.close(linger=0)
        self.context.term()
        self.root.destroy()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("address", nargs="?", default="tcp://127.0.0.1:5555")
    parser.add_argument("--curve-secret", help="this viewer's CURVE certificate (NAME.key_secret)")
    parser.add_argument("--curve-server", help="the publisher's public certificate (server.key)")
    parser.add_argument("--log", help="record every header received as one JSON line")
    parser.add_argument("--frames", type=int, help="stop after this many frames")
    parser.add_argument("--screenshot", help="with --frames: save the window as this PNG before stopping")
    parser.add_argument("--lines", action="store_true", help="start with the centre lines from the measurements drawn")
    parser.add_argument("--layers", action="store_true", help="the publisher runs in layers mode (--layers)")
    options = parser.parse_args()
    if bool(options.curve_secret) != bool(options.curve_server):
        parser.error("--curve-secret and --curve-server go together")
    viewer = Viewer(options)
    viewer.show_lines = options.lines
    viewer.root.mainloop()


if __name__ == "__main__":
    main()
