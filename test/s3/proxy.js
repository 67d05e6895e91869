#!/usr/bin/env node
// proxy.js - a SigV4-checking HTTP proxy in front of s3rver, for tests only.
//
//   node proxy.js --upstream HOST:PORT [--listen HOST:PORT] [--creds AK:SK]...
//
// s3rver 3.7.1 checks the access key id but never the signature, so a
// client with a wrong secret or a signing bug would pass every test.  This
// proxy recomputes the AWS Signature Version 4 of every request with the AWS
// SDK's own signer (@smithy/signature-v4), from the headers the client says
// it signed and the secret it knows for that access key, and answers
// 403 SignatureDoesNotMatch on a mismatch, the way S3 does.  Good requests
// are forwarded unchanged to s3rver and its answer is streamed back.
//
// Checked here, before forwarding:
//   - an Authorization header is present (no anonymous requests);
//   - the access key is known (403 InvalidAccessKeyId otherwise);
//   - the signature, over: the method; the path exactly as sent (S3 does not
//     normalise or re-escape it); the query re-canonicalised (decoded, then
//     sorted and RFC 3986 re-encoded, valueless names as "name=") - so a
//     client that signs an unsorted, unencoded or "?uploads"-style query
//     fails here as it would on S3; exactly the headers in SignedHeaders;
//   - a hex x-amz-content-sha256 equals the sha256 of the body (400
//     XAmzContentSHA256Mismatch); UNSIGNED-PAYLOAD is accepted, as S3 does.
// Not checked: clock skew (s3rver does that), presigned URLs (refused).
//
// Prints "sigv4-proxy listening on HOST:PORT" on stdout once it listens, and
// one line per request on stderr ("sigv4-proxy: METHOD URL: STATUS...").
"use strict";

const http = require("http");
const crypto = require("crypto");
const { SignatureV4 } = require("@smithy/signature-v4");
const { Sha256 } = require("@aws-crypto/sha256-js");

function usage() {
	process.stderr.write("usage: proxy.js --upstream HOST:PORT [--listen HOST:PORT] [--creds AK:SK]...\n");
	process.exit(64);
}

let upstream = null;
let listen = "127.0.0.1:0";
const secrets = new Map();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
	const a = argv[i];
	const v = argv[i + 1];
	if (v === undefined)
		usage();
	if (a === "--upstream")
		upstream = v;
	else if (a === "--listen")
		listen = v;
	else if (a === "--creds") {
		const c = v.indexOf(":");
		if (c < 1)
			usage();
		secrets.set(v.slice(0, c), v.slice(c + 1));
	} else
		usage();
	i++;
}
if (!upstream)
	usage();
// s3rver's built-in account.
if (secrets.size === 0)
	secrets.set("S3RVER", "S3RVER");

function splitHostPort(s) {
	const c = s.lastIndexOf(":");
	return { host: s.slice(0, c), port: Number(s.slice(c + 1)) };
}
const up = splitHostPort(upstream);

function xmlEscape(s) {
	return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fail(req, res, status, code, message) {
	const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + code +
		"</Code><Message>" + xmlEscape(message) + "</Message><RequestId>sigv4-proxy</RequestId></Error>";
	process.stderr.write(`sigv4-proxy: ${req.method} ${req.url}: ${status} ${code}: ${message}\n`);
	res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
	res.end(req.method === "HEAD" ? undefined : body);
}

// "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex"
function parseAuth(h) {
	const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(h || "");
	if (!m)
		return null;
	const f = {};
	for (const part of m[1].split(",")) {
		const kv = part.trim();
		const eq = kv.indexOf("=");
		if (eq > 0)
			f[kv.slice(0, eq)] = kv.slice(eq + 1);
	}
	if (!f.Credential || !f.SignedHeaders || !f.Signature)
		return null;
	const cred = f.Credential.split("/");
	if (cred.length !== 5 || cred[4] !== "aws4_request")
		return null;
	return {
		accessKey: cred[0], date: cred[1], region: cred[2], service: cred[3],
		signedHeaders: f.SignedHeaders.split(";"), signature: f.Signature,
	};
}

// Decode the raw query into the {name: value | [values]} map the signer
// canonicalises.  No "+" -> space: S3 clients percent-encode spaces.
function parseQuery(raw) {
	const q = {};
	if (!raw)
		return q;
	for (const p of raw.split("&")) {
		if (p === "")
			continue;
		const eq = p.indexOf("=");
		const k = decodeURIComponent(eq < 0 ? p : p.slice(0, eq));
		const v = eq < 0 ? "" : decodeURIComponent(p.slice(eq + 1));
		if (k in q)
			q[k] = [].concat(q[k], v);
		else
			q[k] = v;
	}
	return q;
}

// "20240102T030405Z" -> Date
function parseAmzDate(s) {
	const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(s || "");
	if (!m)
		return null;
	return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

async function check(req, body) {
	const auth = parseAuth(req.headers.authorization);
	if (!auth) {
		if (/[?&]X-Amz-Signature=/.test(req.url))
			return [403, "AccessDenied", "presigned URLs are not supported by the test proxy"];
		return [403, "AccessDenied", "missing or malformed SigV4 Authorization header"];
	}
	const secret = secrets.get(auth.accessKey);
	if (secret === undefined)
		return [403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."];
	const date = parseAmzDate(req.headers["x-amz-date"]);
	if (!date)
		return [403, "AccessDenied", "missing or malformed x-amz-date"];

	const declared = req.headers["x-amz-content-sha256"];
	if (declared === undefined)
		return [400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"];
	if (/^[0-9a-f]{64}$/.test(declared)) {
		const actual = crypto.createHash("sha256").update(body).digest("hex");
		if (actual !== declared)
			return [400, "XAmzContentSHA256Mismatch",
				`The provided 'x-amz-content-sha256' header does not match what was computed (${actual}).`];
	} else if (declared !== "UNSIGNED-PAYLOAD") {
		return [400, "InvalidArgument", `unsupported x-amz-content-sha256 value ${declared}`];
	}

	// Only the headers the client claims it signed, with the values that
	// actually arrived: a signed header that was never sent (curl signs an
	// empty "Expect:" it does not send) makes the lists differ.
	const headers = {};
	for (const name of auth.signedHeaders) {
		const v = req.headers[name];
		if (v !== undefined)
			headers[name] = Array.isArray(v) ? v.join(",") : v;
	}
	const qi = req.url.indexOf("?");
	const request = {
		method: req.method,
		protocol: "http:",
		hostname: "unused",
		path: qi < 0 ? req.url : req.url.slice(0, qi),
		query: parseQuery(qi < 0 ? "" : req.url.slice(qi + 1)),
		headers,
		body,
	};
	const token = req.headers["x-amz-security-token"];
	const signer = new SignatureV4({
		credentials: { accessKeyId: auth.accessKey, secretAccessKey: secret, sessionToken: token },
		region: auth.region,
		service: auth.service,
		sha256: Sha256,
		uriEscapePath: false,
		applyChecksum: false,
	});
	const signed = await signer.sign(request, {
		signingDate: date,
		signableHeaders: new Set(auth.signedHeaders),
	});
	const m = /SignedHeaders=([^,]*), Signature=([0-9a-f]+)/.exec(signed.headers.authorization);
	if (!m || m[1] !== auth.signedHeaders.join(";") || m[2] !== auth.signature)
		return [403, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your key and signing method."];
	return null;
}

function forward(req, res, body) {
	const headers = Object.assign({}, req.headers);
	delete headers["transfer-encoding"];
	headers["content-length"] = String(body.length);
	const u = http.request({
		host: up.host, port: up.port, method: req.method, path: req.url, headers,
	}, (ur) => {
		// One line per forwarded request, so tests can see what was sent.
		process.stderr.write(`sigv4-proxy: ${req.method} ${req.url}: ${ur.statusCode}\n`);
		res.writeHead(ur.statusCode, ur.headers);
		ur.pipe(res);
	});
	u.on("error", (e) => fail(req, res, 502, "BadGateway", `upstream: ${e.message}`));
	u.end(body);
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on("data", (c) => chunks.push(c));
	req.on("end", () => {
		const body = Buffer.concat(chunks);
		check(req, body).then((err) => {
			if (err)
				fail(req, res, err[0], err[1], err[2]);
			else
				forward(req, res, body);
		}, (e) => fail(req, res, 500, "InternalError", `proxy: ${e.message}`));
	});
});
// Large uploads take a while on a loaded machine; never cut them off.
server.requestTimeout = 0;
server.headersTimeout = 60000;
const l = splitHostPort(listen);
server.listen(l.port, l.host, () => {
	const a = server.address();
	process.stdout.write(`sigv4-proxy listening on ${a.address}:${a.port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"])
	process.on(sig, () => process.exit(0));
