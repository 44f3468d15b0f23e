#!/usr/bin/env node
// Example: a Node.js orchestrator using the mangaroute sidecar.
//
// For each foundation-model call: Choose (where should it go?), make the call yourself
// (Bedrock Converse with decision.target.model_id, or SageMaker InvokeEndpoint), then Report
// how it went, quoting the decision id. This example does not call AWS: it pretends the call
// took --latency-ms.
//
//   npm ci
//   node client.js --address unix:/tmp/mangaroute-$(id -u)/sidecar.sock --class simple
//   node client.js --address 127.0.0.1:50051 --tls-ca ca.pem [--tls-cert c.pem --tls-key c.key]
//
// Prints one JSON line: the decision, the report's result and, with --check-invalid, the
// status of a deliberately invalid report (NaN latency). Exit code 0 on success.

"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { parseArgs } = require("node:util");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = process.env.MANGAROUTE_PROTO_ROOT || path.join(__dirname, "..", "..", "proto");
const PROTO_FILE = "mangaroute_api/v1/router.proto";

function defaultAddress() {
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime && fs.existsSync(runtime)) return `unix:${runtime}/mangaroute/sidecar.sock`;
  return `unix:/tmp/mangaroute-${uid}/sidecar.sock`;
}

function loadRouterService() {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names as in the .proto: decision_id, latency_ms, ...
    longs: String, // int64 counters arrive as strings (exact beyond 2^53)
    enums: String, // enums as their names: "OUTCOME_OK", "PATTERN_BEDROCK_ON_DEMAND"
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).mangaroute.v1.Router;
}

function credentials(options) {
  if (!options["tls-ca"]) return grpc.credentials.createInsecure();
  const read = (name) => (options[name] ? fs.readFileSync(options[name]) : null);
  return grpc.credentials.createSsl(read("tls-ca"), read("tls-key"), read("tls-cert"));
}

// Promisified unary call with a deadline, so a stuck sidecar cannot hang the caller.
function unary(client, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    client[method](request, { deadline }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

async function main() {
  const { values: options } = parseArgs({
    options: {
      address: { type: "string", default: process.env.MANGAROUTE_SIDECAR || defaultAddress() },
      class: { type: "string", default: "" },
      session: { type: "string", default: "" },
      "budget-ms": { type: "string", default: "1500" },
      "latency-ms": { type: "string", default: "640" },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "server-name": { type: "string" },
      "check-invalid": { type: "boolean", default: false },
      "timeout-ms": { type: "string", default: "5000" },
    },
  });
  const Router = loadRouterService();
  const channelOptions = options["server-name"]
    ? { "grpc.ssl_target_name_override": options["server-name"] }
    : {};
  const client = new Router(options.address, credentials(options), channelOptions);
  const timeoutMs = Number(options["timeout-ms"]);

  try {
    const decision = await unary(
      client,
      "Choose",
      {
        request_class: options.class, // empty: the config's default class
        session_id: options.session,
        budget_ms: Number(options["budget-ms"]),
        input_tokens: 500,
        output_tokens: 300,
        tags: { example: "node-client" },
      },
      timeoutMs,
    );

    // ... here the real service calls Bedrock/SageMaker with decision.target.model_id,
    // trying decision.fallbacks in order if it fails ...

    await unary(
      client,
      "Report",
      {
        decision_id: decision.decision_id,
        outcome: "OUTCOME_OK",
        latency_ms: Number(options["latency-ms"]),
        input_tokens: 512,
        output_tokens: 280,
      },
      timeoutMs,
    );

    const result = {
      decision: {
        decision_id: decision.decision_id,
        target: decision.target,
        fallbacks: decision.fallbacks.map((t) => t.name),
        reason: decision.reason,
        request_class: decision.request_class,
        policy: decision.policy,
      },
      report: "ok",
    };

    if (options["check-invalid"]) {
      try {
        await unary(
          client,
          "Report",
          { target_name: decision.target.name, outcome: "OUTCOME_OK", latency_ms: NaN },
          timeoutMs,
        );
        result.invalid = { code: "OK" };
      } catch (error) {
        result.invalid = { code: grpc.status[error.code], details: error.details };
      }
    }
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    client.close();
  }
}

main().catch((error) => {
  const code = error.code !== undefined ? grpc.status[error.code] : "";
  process.stderr.write(`mangaroute node client: ${code} ${error.details || error.message}\n`);
  process.exit(1);
});
