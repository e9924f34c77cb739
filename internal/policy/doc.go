// Package policy decides, for every call through the gateway, whether it
// may proceed: allow, deny, or require approval, together with the masking
// profile and request-logging mode to apply. Masking is on by default: an
// allow or require_approval rule without `mask:` gets [MaskDefault]; only
// `mask: none` ([MaskNone]) turns it off, and [Policy.Warnings] (logged by
// the engine at every load) names each such rule.
//
// A policy is a YAML file of ordered rules. Each rule has a CEL expression
// ("when") over the request's facts; the first rule whose expression is
// true decides. If no rule matches, the request is denied by the implicit
// rule named [DefaultRuleName] — default deny is not configurable.
//
// # Facts visible to rules
//
//	principal  issuer, subject, kind ("user"|"service"), name, email,
//	           auth_method, groups (list of string), claims (map)
//	request    method, path (normalised by the gateway), host,
//	           query (map of string to list of string),
//	           headers (map of lower-cased name to value; only the
//	           headers the gateway selects)
//	route      name, profile ("openai"|"generic")
//	body       the facts BodyFacts derives from an OpenAI-style JSON body
//	           (model, stream, n, max_tokens, temperature, message_count,
//	           has_tools, tools, input_count, user) for openai-profile
//	           routes; an empty map for other routes and for bodies that
//	           are not JSON objects. Keys are present only when the body
//	           has them, so guard with has(body.model). The gateway
//	           refuses a body whose known fields have the wrong type
//	           (CheckOpenAIBody, OpenAIFieldTypes) before any rule runs,
//	           so a present field is always a fact of its type.
//	grants     list of the caller's active just-in-time grants
//	           {id, scope, expires}; the approval workflow passes only
//	           grants whose ApprovalSetting.Scope covers the request
//	           (GrantScope.Covers) and sets scope to the approval
//	           setting's name, which has_grant matches
//	now        the decision time (timestamp)
//
// Helper functions: principal.in_group("g") / in_group(principal, "g"),
// principal.any_group(["a","b"]) / any_group(principal, ["a","b"]),
// request.path.glob("/v1/*") / glob(request.path, "/v1/**") where "*"
// matches within one path segment, "**" across segments, and a trailing
// "/**" also matches the bare prefix; has_grant("scope") is true when the
// caller holds an unexpired grant with that scope.
//
// # Guarantees
//
// Every expression is parsed, type-checked against typed declarations and
// cost-estimated when the policy is loaded; an error names the file, the
// rule (name and index) and the position (line:column in the YAML and in
// the expression). A policy that fails to load is never used, in part or
// whole: [Engine] keeps serving the previous version. A rule whose
// evaluation fails at run time (for example reading a body key that is
// absent) denies the request — the engine fails closed.
//
// Cost is bounded without run-time tracking (which would cost several
// allocations per rule): the load-time estimate assumes at most 256
// elements per list or map, 8 KiB per string of the request and claims,
// 1 KiB per identity string (subject, group, …), route, grant and body
// fact, and nesting depth 4 in claims and body, and Decide denies any input beyond those bounds
// before evaluating a rule (EvalError says which bound).
//
// Every [Decision] carries the policy [Policy.Version], a SHA-256 of the
// canonical policy content, so audit entries name exactly which rules
// decided. Formatting and comments do not change the version.
//
// # Never
//
// The package never performs I/O during a decision, never logs request
// contents or credentials, and never panics on policy or request input.
package policy
