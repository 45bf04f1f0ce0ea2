// express with and without Mozilla's client-sessions, the library sealed-sessions
// descends from. The harness copies this file into a temporary folder, runs `npm install` there
// (never into the repository) and starts `node node_app.js PORT VARIANT` with VARIANT "none" or
// "client-sessions". Routes: /health, /login (stores a user id), /read (reads one key).
"use strict";
const express = require("express");

const port = Number(process.argv[2]);
const variant = process.argv[3] || "none";
const app = express();
app.disable("x-powered-by");
app.disable("etag");

if (variant === "client-sessions") {
  const sessions = require("client-sessions");
  app.use(
    sessions({
      cookieName: "session",
      secret: "benchmark-only-secret-for-client-sessions-0123456789",
      duration: 14 * 24 * 60 * 60 * 1000,
      activeDuration: 0,
      cookie: { httpOnly: true, secure: false },
    }),
  );
}

app.get("/health", (req, res) => res.type("text/plain").send("ok"));
app.get("/login", (req, res) => {
  req.session.user_id = 123456;
  req.session.csrf = "q3Jd7Zk1vYx2Lw9Pm4Nc8Rt6";
  res.type("text/plain").send("ok");
});
app.get("/read", (req, res) => {
  const value = req.session ? req.session.user_id : 123456;
  res.type("text/plain").send(String(value));
});

app.listen(port, "127.0.0.1");
