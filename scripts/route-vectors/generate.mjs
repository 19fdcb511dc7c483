// Generates Tests/GatehouseTests/Vectors/route-matching.json: what Clerk's createRouteMatcher answers for
// (pattern, request path) pairs. Clerk's own code is read from fetched checkouts at run time and never
// committed; only the answers are.
//
//   node scripts/route-vectors/generate.mjs <clerk/javascript git dir> <pillarjs/path-to-regexp git dir> [out.json]
//
// The expected answer is computed the way a Next.js app with Clerk sees a request: the raw request-target is
// appended to the origin and parsed as a WHATWG URL (req.nextUrl.pathname: dot segments resolved, query and fragment dropped), then
// createPathMatcher's normalisation (decodeURI, `//+` → `/`) and path-to-regexp 6.3.0 `pathToRegexp(pattern)`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { pathToFileURL } from "node:url";

const [clerkGit, ptrGit, outArg] = process.argv.slice(2);
if (!clerkGit || !ptrGit) {
  console.error("usage: generate.mjs <clerk/javascript git dir> <pillarjs/path-to-regexp git dir> [out.json]");
  process.exit(2);
}
const out = outArg ?? "Tests/GatehouseTests/Vectors/route-matching.json";
const show = (git, spec) => execFileSync("git", ["--git-dir", git, "show", spec], { encoding: "utf8", maxBuffer: 1 << 26 });
const clerkCommit = execFileSync("git", ["--git-dir", clerkGit, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();

// 1. Clerk's vendored path-to-regexp (compiled JS) and its path matcher (TypeScript, types stripped here).
const work = mkdtempSync(join(tmpdir(), "route-vectors-"));
const vendored = join(work, "path-to-regexp.mjs");
writeFileSync(vendored, show(clerkGit, "HEAD:packages/shared/src/compiled/path-to-regexp/index.js"));
const { pathToRegexp } = await import(pathToFileURL(vendored).href);

const matcherSource = show(clerkGit, "HEAD:packages/shared/src/pathMatcher.ts");
function extract(startMarker) {
  const start = matcherSource.indexOf(startMarker);
  if (start < 0) throw new Error(`pathMatcher.ts changed: '${startMarker}' not found`);
  const end = matcherSource.indexOf("\n};\n", start);
  if (end < 0) throw new Error(`pathMatcher.ts changed: end of '${startMarker}' not found`);
  return matcherSource.slice(start, end + 3);
}
const stripTypes = (code) =>
  code
    .replace(/^export /gm, "")
    .replace(/\(pathname: string\): string =>/g, "(pathname) =>")
    .replace(/\(patterns: [^)]*\) =>/g, "(patterns) =>")
    .replace(/\(pathname: string\) =>/g, "(pathname) =>");
const classStart = matcherSource.indexOf("export class MalformedURLError");
const classEnd = matcherSource.indexOf("\n}\n", classStart);
const malformedClass = matcherSource
  .slice(classStart, classEnd + 2)
  .replace(/^export /, "")
  .replace("public readonly statusCode = 400;", "statusCode = 400;")
  .replace("(pathname: string, cause?: unknown)", "(pathname, cause)");
const matcherCode = [
  malformedClass,
  stripTypes(extract("const precomputePathRegex")),
  stripTypes(extract("export const normalizePath")),
  stripTypes(extract("export const createPathMatcher")),
  "return { createPathMatcher, normalizePath };",
].join("\n");
const { createPathMatcher } = new Function("pathToRegexp", matcherCode)(pathToRegexp);

// 2. Patterns and paths from path-to-regexp v6.3.0's own test suite.
const spec = show(ptrGit, "v6.3.0:src/index.spec.ts");
const testsStart = spec.indexOf("const TESTS: Test[] = [");
const testsEnd = spec.indexOf("\n];\n", testsStart);
const TESTS = new Function("return " + spec.slice(spec.indexOf("[", testsStart), testsEnd + 2))();
const specErrors = [...spec.matchAll(/pathToRegexp\.pathToRegexp\("((?:[^"\\]|\\.)*)"\);\s*\}\)\.toThrow/g)].map((m) => JSON.parse(`"${m[1]}"`));

const patterns = new Set();
const specPaths = new Map(); // pattern -> its own inputs
const allSpecPaths = new Set();
for (const [path, , , matchCases] of TESTS) {
  if (typeof path !== "string") continue;
  patterns.add(path);
  const inputs = matchCases.map((c) => c[0]);
  specPaths.set(path, [...(specPaths.get(path) ?? []), ...inputs]);
  for (const input of inputs) allSpecPaths.add(input);
}
for (const p of specErrors) patterns.add(p);

// 3. Clerk-style matchers and the syntax classes the issue lists.
const clerkStyle = [
  "/", "/dashboard(.*)", "/dashboard/:path*", "/api/(.*)", "/api(.*)", "/(api|trpc)(.*)", "/admin/:rest*", "/admin(.*)",
  "/org/:slug", "/org/:slug?", "/org/:slug+", "/org/:slug/settings(.*)", "/:name.:ext", "/files/:name.:ext", "/:org-:repo",
  "/repos/:org-:repo", "/:id(\\d{4})", "/posts/:id(\\d{4})", "/((?!_next|api).*)", "((?!_next|api).*)", "/((?!.+\\.[\\w]+$|_next).*)",
  "/(\\w+)", "/x/(\\w+)", "/(foo|bar)", "/x/(a|b)", "{/login}?", ":test?", "/sign-in(.*)", "/sign-up(.*)", "/public\\(x\\)",
  "/a\\:b", "/a\\*", "/\\(paren\\)(.*)", "/caf\u00e9", "/caf\u00e9(.*)", "/\u00fcber/:x", "/\u0131d", "/\u017fecret(.*)", "/\u212aey",
  "/stra\u00dfe", "/\u03c3igma", "/\u{1F600}(.*)", "/%28x%29", "/%61pi(.*)", "/a%2Fb", "/a;b", "/a%3Bb", "/100%25", "/api/v:version(\\d+)/:rest*",
  "/{:lang}?/about", "/{a}?b", "/{prefix-:id-suffix}?", "/{-:x}+", "/{/:seg}*", "/books{/:id}?", "/:lang{-:region}?", "/x/:a-:b-:c",
  "/x/:a.:b.:c", "/x/:file.:ext?", "/user/:id(\\d+)?", "/user/:id(\\d+)*", "/(.*)", "(.*)", "/:path*", "/:path+", "/a/:b(.+)", "/a/(.+)",
  "/api/:v(v1|v2)/(.*)", "/x(?!y)(.*)", "/x/:p([^/]+)", "/x/:p([a-z]+)", "/x/:p([A-Z]+)", "/x/:p(\\s+)", "/x/:p(\\S+)", "/x/:p(.)",
  "/x/:p(..)", "/x/:p([\u00e0-\u00ff]+)", "/x/:p(\\u00e9)", "/x/:p(\\x41)", "/x/:p([^])", "/x/:p(a{2})", "/x/:p(\\d+|\\w{3})",
  "/x/:p((?:a|b)+)", "/x/:p((?=a)\\w+)", "/x/:p((?<=x)y)", "/x/:p(\\bfoo\\b)", "/x/:p(^a)", "/x/:p(a$)", "/x/:p(\\p{L}+)",
  "/x/:p(\\v)", "/x/:p(\\q)", "/x/:p([\\d-z]+)", "/x/:p(a|)", "/x/:p([])", "/x/:p(\\/)", "/x/:p(a*?b)", "/dash(.+)", "/dash(.+?)",
  // Astral characters are two UTF-16 units to a regex without `u`: lengths, classes, lone surrogates, quantifiers.
  "/x/:id(.{2})", "/y/:id([^/]{2})", "/x/:p(.{4})", "/x/:p(.{3})", "/x/:p(\\S\\S)", "/x/:p(\\W{2})", "/x/:p([^a]{2})",
  "/x/:p(\\ud83d.)", "/x/:p(\\ud83d)", "/x/:p(.\\ude00)", "/x/:p([\\ud800-\\udbff][\\udc00-\\udfff])", "/x/:p([\\ud800-\\udfff]+)",
  "/x/:p(\u{1F600}+)", "/x/:p(\u{1F600}{2})", "/x/:p([\u{1F600}])", "/x/:p([\u{1F600}]{2})", "/x/:p([^\u{1F600}]+)",
  "/x/:p(\u{10400})", "/\u{1F600}/:p(\u00e9.)", "/:p(\\ud83d(?!\\ude00).)", "/x/:p(\\uD83D\\uDE00)", "/x/:name.:ext",
  // Patterns path-to-regexp refuses.
  "/foo*", "/foo?", "/foo+", "/a/{b}", "/x/:", "/x(", "/x)", "/:x:y", "/foo:x*", "/{a{b:foo}}", "/:foo()", "/:foo(abc", "/:(test)",
  "/:foo(?:\\d+)", "/:foo(\\d+(\\.\\d+)?)", "/x/:p((?i)a)", "/x/:p(\\k<n>)", "/x/:p([z-a])", "/x/:p(a{2,1})", "/x/:p(*)", "/x/:p(+a)",
  "/x/:p((?<n>a)(?<n>b))", "/x/:p(a))", "/a\\", "}", "/x/:p(\\)",
  "", "admin", "/a//b", "/a/../b", "/a/./b", "//x", "/x//", "/X/Y", "/a b", "/a%20b", "/~user", "/a.b", "/a-b", "/a_b", "/a+b", "/a@b", "/a$b",
];
for (const p of clerkStyle) patterns.add(p);

// 4. Paths: generic ones, the spec's inputs, and per-pattern derivations (encodings, case, slashes, dots).
const generic = [
  "/", "//", "/x", "/X", "/dashboard", "/dashboard/", "/dashboard/x/y", "/dashboardxyz", "/DASHBOARD", "/dash", "/x/dashboard",
  "//dashboard", "/dashboard//x", "/%64ashboard", "/%44ASHBOARD", "/dashboard%2Fx", "/dashboard%2fx", "/api", "/api/", "/api/x",
  "/API/X", "/trpc", "/trpc/x", "/apix", "/_next/static/a.js", "/_next", "/admin", "/admin/", "/admin/a/b", "/administrator",
  "/Admin", "/%61dmin", "/%41dmin", "/admin%2F", "/admin%3Bx", "/admin;x", "/admin%25", "/admin%2525", "/admin%252e%252e%252f",
  "/org", "/org/acme", "/org/acme/", "/org/acme/x", "/org/a/b", "/org/acme/settings", "/org/acme/settings/members",
  "/report.pdf", "/files/report.pdf", "/files/report.tar.gz", "/a.b.c", "/.x", "/x.", "/acme-web", "/acme-web-app", "/repos/acme-web",
  "/-x", "/x-", "/1234", "/12345", "/posts/2024", "/posts/24", "/%28x%29", "/(x)", "/public(x)", "/public%28x%29", "/public%28X%29",
  "/caf\u00e9", "/CAF\u00c9", "/caf%c3%a9", "/CAF%C3%89", "/cafe", "/\u00fcber/x", "/\u00dcBER/x", "/\u0131d", "/Id", "/id", "/\u0130d",
  "/secret", "/SECRET", "/\u017fecret", "/key", "/KEY", "/\u212aey", "/strasse", "/STRASSE", "/stra\u00dfe", "/STRA\u1e9eE",
  "/\u03c3igma", "/\u03a3IGMA", "/\u03c2igma", "/\u{1F600}", "/\u{1F600}/x", "/%F0%9F%98%80", "/x/\u2028", "/x/%E2%80%A8",
  "/dashboard%E2%80%A8", "/x/%0A", "/x/%00", "/%ZZ", "/%", "/%E2%80", "/%C0%AF", "/%ED%A0%80", "/%FF", "/x/%3F", "/x/%23", "/x?y",
  "/x#y", "/x/.", "/x/..", "/x/./y", "/x/../y", "/a/../admin", "/public/../admin", "/public/%2e%2e/admin", "/a//../admin",
  "/x/%2E", "/x/%2e%2e/y", "/a;b", "/a%3Bb", "/a%3bb", "/100%25", "/100%", "/a%20b", "/a b", "/a+b", "/a@b", "/a%40b", "/a$b",
  "/a%24b", "/a:b", "/a%3Ab", "/a*", "/a%2A", "/~user", "/%7Euser", "/a%7Bb%7D", "/a{b}", "/a/b/c/d/e/f/g", "/x/aa", "/x/a", "/x/ab",
  "/x/A", "/x/\u00e9", "/x/\u00c9", "/x/AB", "/x/123", "/x/ ", "/x/%20", "/x/%09", "/x/\u00a0", "/x/%C2%A0", "/x/foo", "/x/FOO",
  "/x/y", "/xy", "/xz",
  "/x/\u{1F600}", "/y/\u{1F600}", "/x/\u{1F600}\u{1F600}", "/x/\u{1F600}a", "/x/a\u{1F600}", "/x/\u{1F601}", "/x/\u{10000}",
  "/x/\u{10FFFF}", "/x/\u{1D11E}", "/x/\u{20000}", "/x/\u{10400}", "/x/\u{10428}", "/x/\u{1F600}.\u{1F600}", "/y/\u00e9a",
  "/x/%f0%9f%98%80", "/X/%F0%9F%98%80/", "/x/%F0%9F%98%80%F0%9F%98%80%F0%9F%98%80", "/%F0%9F%98%80/%C3%89a", "/\u{1F600}/\u00e9\u{1F600}",
  "/admin/%E2%80%A9/settings", "/admin/\u2029", "/admin/%F0%9F%98%80", "/x/%F0%9F%98", "/x/%ED%B0%80",
  "/login", "/LOGIN", "/login/", "/test", "/about", "/en/about", "/books", "/books/1", "/en", "/en-us", "/en-US",
  "/x/a-b-c", "/x/a.b.c", "/x/a-b", "/x/a.b", "/x/file", "/x/file.txt", "/user/1", "/user", "/user/1/2", "/user/x", "/sign-in",
  "/sign-in/factor-one", "/sign-up", "/api/v1/x", "/api/v2/", "/api/v3/x", "/api/v12/users/1", "/xy/z", "/a/b", "/a%2Fb", "/a/x",
];
function deriveFromPattern(p) {
  const lit = p.replace(/\\(.)/g, "$1").replace(/\([^)]*\)|:\w+|[{}*+?]/g, "");
  const base = lit.startsWith("/") ? lit : "/" + lit;
  const paths = [base, base + "/", base + "x", base + "/x", base.toUpperCase(), "/" + base, base.replace(/\//g, "//"), base + "/../y", base + "%2F"];
  // Encode each letter once, in both hex cases.
  for (let i = 0; i < base.length && i < 12; i++) {
    const c = base[i];
    if (/[A-Za-z0-9().\-_~:@;+$,%]/.test(c)) {
      const hex = c.charCodeAt(0).toString(16).padStart(2, "0");
      paths.push(base.slice(0, i) + "%" + hex.toLowerCase() + base.slice(i + 1));
      paths.push(base.slice(0, i) + "%" + hex.toUpperCase() + base.slice(i + 1));
    }
  }
  return paths;
}
// A raw request-target: non-ASCII, spaces and controls percent-encoded as a client would send them.
const toRequestTarget = (s) => s.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));

function clerkAnswer(pattern, target) {
  const pathname = new URL("http://gatehouse.test" + target).pathname; // origin + request-target, as a server builds it
  const matcher = createPathMatcher(pattern);
  try {
    return matcher(pathname);
  } catch (e) {
    if (e && e.name === "MalformedURLError") return "malformed";
    throw e;
  }
}

const groups = [];
let cases = 0;
for (const pattern of patterns) {
  if (pattern === "") continue; // filtered out by createPathMatcher (no pattern at all)
  let error = null;
  try {
    pathToRegexp(pattern);
  } catch (e) {
    error = String(e.message);
  }
  if (error) {
    groups.push({ pattern, error });
    continue;
  }
  const raw = new Set([...generic, ...allSpecPaths, ...(specPaths.get(pattern) ?? []), ...deriveFromPattern(pattern)]);
  const list = [];
  const seen = new Set();
  for (const p of raw) {
    const target = toRequestTarget(p.startsWith("/") ? p : "/" + p);
    if (seen.has(target)) continue;
    seen.add(target);
    list.push([target, clerkAnswer(pattern, target)]);
  }
  cases += list.length;
  groups.push({ pattern, regex: pathToRegexp(pattern).source, cases: list });
}
mkdirSync(dirname(out), { recursive: true });
const body = {
  source: `clerk/javascript ${clerkCommit} packages/shared (pathMatcher.ts, compiled/path-to-regexp) + pillarjs/path-to-regexp v6.3.0 test inputs`,
  semantics: "answer for the raw request-target: WHATWG URL pathname, then decodeURI + //+ collapse, then pathToRegexp(pattern).test; 'malformed' = Clerk's MalformedURLError",
  groups,
};
writeFileSync(out, JSON.stringify(body, null, 0).replace(/\{"pattern"/g, '\n{"pattern"') + "\n");
console.log(`${groups.length} patterns (${groups.filter((g) => g.error).length} refused by path-to-regexp), ${cases} cases -> ${out}`);
