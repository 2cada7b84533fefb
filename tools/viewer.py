#!/usr/bin/env python3
"""FluoroStream viewer: subscribes to a publisher and shows the annotated stream in a window with its measurements
(frame, latency, motion, wire and catheter tips, roadmap state).

Works with the default stream (raw RGB frames) and with `--jpeg` streams, plain or CURVE. Toggles (keys): `m`
the measurements panel, `c` centre lines and tips redrawn from the measurements (magenta, over the image's own),
`q` quits. `--log FILE` records every header received as one JSON line; `--screenshot PNG --frames N` saves the
window after N frames and exits (used by the test under Xvfb).

Usage: tools/viewer.py [tcp://127.0.0.1:5555] [--curve-secret me.key_secret --curve-server server.key]
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
        self.socket.setsockopt(zmq.RCVHWM, 2)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(options.address)
        self.log = open(options.log, "w") if options.log else None
        self.received, self.lost, self.last_sequence = 0, 0, None
        self.show_panel, self.show_lines = True, False

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
            newest = self.socket.recv_multipart()  # show the newest frame; older ones in the queue are skipped
            self.count(newest[0])
        if newest is not None:
            self.show(*newest)
        if self.options.frames and self.received >= self.options.frames:
            self.root.update()
            self.root.after(300, self.finish)
            return
        self.root.after(5, self.poll)

    def count(self, header):
        meta = json.loads(header)
        self.received += 1
        if self.last_sequence is not None and meta["sequence"] > self.last_sequence + 1:
            self.lost += meta["sequence"] - self.last_sequence - 1
        self.last_sequence = meta["sequence"]
        if self.log:
            self.log.write(header.decode("utf-8") + "\n")

    def show(self, header, payload):
        meta = json.loads(header)
        arrived = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if meta.get("encoding") == "jpeg":
            rgb = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        else:
            rgb = np.frombuffer(payload, np.uint8).reshape(meta["shape"])
        picture = Image.fromarray(np.ascontiguousarray(rgb))
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
        self.panel.configure(text=self.describe(meta, (arrived - meta["published_ns"]) / 1e6))

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
                  f"encoding   {meta.get('encoding', 'raw')}", "", "keys: m panel, c lines, q quit"]
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
    options = parser.parse_args()
    if bool(options.curve_secret) != bool(options.curve_server):
        parser.error("--curve-secret and --curve-server go together")
    viewer = Viewer(options)
    viewer.show_lines = options.lines
    viewer.root.mainloop()


if __name__ == "__main__":
    main()
