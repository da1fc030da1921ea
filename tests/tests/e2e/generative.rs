//! Generative answers against a real language-model server (llama.cpp's OpenAI-compatible
//! server with SmolLM2-135M, `docket_tests::llm`): grounded in the asking tenant's own
//! passages, cited with exact quotes, metered as their own ledger kinds, isolated from
//! another tenant's canaries; and every failure of the model (unreachable, hanging, a
//! refused key) answers extractively with the reason as a code, counted in `/metrics`. The
//! model is tiny and often wrong: these tests check guarantees, never its words.

use docket_tests::actors::TestTenant;
use docket_tests::actors::expect_error;
use docket_tests::llm::{LocalLlm, MODEL};
use docket_tests::stripe::free_port;
use docket_tests::{TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

const SUPPLY: &[u8] = b"SUPPLY AGREEMENT\n\nThis Supply Agreement is made between Northwind Traders Inc. and \
    Contoso Widgets LLC. The Supplier shall deliver the widgets every month.\n\n7. Governing Law. This Agreement shall be governed \
    by the laws of the State of Ohio.\n\n8. Payment. The Buyer shall pay each invoice within thirty days.\n\n9. Termination. Either party may \
    terminate this Agreement for convenience on ninety days written notice.";

const CANARIES_A: [&str; 3] = [
    "ZEBRA-ALPHA-7731",
    "Project Quillfeather",
    "Nightjar escrow account 99-4471-AX",
];

const GOVERNING: &str = "Which state's law governs the agreement?";

async fn consent(app: &TestApp, token: &str, granted: bool) {
    let r = app
        .call(
            Method::POST,
            "/v1/consents",
            Some(token),
            Some(
                json!({"purpose": "external_llm_processing", "granted": granted, "terms_version": "2026-10"}),
            ),
        )
        .await;
    assert_eq!(r.status(), 201);
}

async fn ledger(app: &TestApp, t: docket_platform::ids::TenantId, kind: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(quantity), 0)::bigint FROM usage_events WHERE tenant_id = $1 AND kind = $2",
    )
    .bind(t)
    .bind(kind)
    .fetch_one(app.control.pool())
    .await
    .expect("ledger")
}

/// An app whose language model is at `url` (with `extra` settings), its in-process worker,
/// and an enterprise tenant `slug` that consents and holds the supply contract.
async fn consenting_tenant(
    url: &str,
    extra: &[(&str, &str)],
    slug: &str,
) -> (TestApp, tokio::task::JoinHandle<()>, TestTenant, String) {
    let mut settings = vec![("DOCKET_LLM_URL", url), ("DOCKET_LLM_MODEL", MODEL)];
    settings.extend_from_slice(extra);
    let app = spawn_app_with(&settings).await;
    let worker = app.spawn_worker().await;
    let t = app.create_tenant_on(slug, "enterprise", "shared").await;
    let owner = app.owner_token(&t).await;
    consent(&app, &owner, true).await;
    app.upload_ready(&owner, "supply.txt", SUPPLY.to_vec()).await;
    (app, worker, t, owner)
}

/// The citation numbers written in an answer (`[1]`, `[2]` …).
fn marks(answer: &str) -> Vec<usize> {
    answer
        .split('[')
        .skip(1)
        .filter_map(|s| s.split_once(']').and_then(|(n, _)| n.parse().ok()))
        .collect()
}

#[tokio::test]
async fn generative_answers_are_grounded_in_the_tenants_own_passages_and_metered() {
    let llm = LocalLlm::start().await;
    let url = llm.url();
    let app = spawn_app_with(&[
        ("DOCKET_LLM_URL", url.as_str()),
        ("DOCKET_LLM_MODEL", MODEL),
        // Two passages and short answers keep a 135M model on one thread at a few seconds.
        ("DOCKET_LLM_MAX_PASSAGES", "2"),
        ("DOCKET_LLM_MAX_TOKENS", "96"),
        ("DOCKET_LLM_TIMEOUT_SECS", "45"),
    ])
    .await;
    let _worker = app.spawn_worker().await;
    let (a, b) = (
        app.create_tenant_on("gena", "enterprise", "shared").await,
        app.create_tenant_on("genb", "enterprise", "shared").await,
    );
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);
    consent(&app, &ta, true).await;
    consent(&app, &tb, true).await;
    let secret: String = CANARIES_A
        .iter()
        .map(|c| format!("The {c} is confidential and belongs to this organisation only. Payment under the {c} is due quarterly.\n\n"))
        .collect();
    let a_doc = app.upload_ready(&ta, "canary-a.txt", secret.into_bytes()).await;
    let a_id = a_doc["id"].as_str().expect("id").to_owned();
    let b_doc = app.upload_ready(&tb, "supply.txt", SUPPLY.to_vec()).await;
    let b_id = b_doc["id"].as_str().expect("id").to_owned();
    let b_chunks = app.chunk_texts(b.id).await;

    let questions = [
        GOVERNING,
        "How long does the buyer have to pay an invoice?",
        "Who are the parties to this agreement?",
        // A's canaries, asked by B: B's answer may quote B's own clauses, never A's.
        "What is the ZEBRA-ALPHA-7731?",
        "Tell me about Project Quillfeather and the Nightjar escrow account.",
    ];
    let (mut generated, mut llm_in, mut llm_out) = (0, 0i64, 0i64);
    for q in questions {
        let v = app.ask_final(&tb, q, json!({"mode": "generative"})).await;
        let body = v.to_string();
        assert_eq!(v["requested_mode"], "generative", "{body}");
        for c in CANARIES_A {
            assert!(!v["answer"].as_str().unwrap_or("").contains(c), "{q}: {body}");
        }
        assert!(!v["citations"].to_string().contains(&a_id), "{q}: {body}");
        let citations = v["citations"].as_array().expect("citations");
        for c in citations {
            assert_eq!(c["document_id"], b_id.as_str(), "{body}");
            let quote = c["quote"].as_str().expect("quote");
            assert!(
                b_chunks.iter().any(|t| t.contains(quote)),
                "every quote is an exact substring of B's chunk: {quote}"
            );
        }
        let usage = &v["usage"];
        llm_in += usage["llm_tokens_in"].as_i64().expect("llm_tokens_in");
        llm_out += usage["llm_tokens_out"].as_i64().expect("llm_tokens_out");
        match (v["status"].as_str(), v["mode"].as_str()) {
            (Some("answered"), Some("generative")) => {
                generated += 1;
                let answer = v["answer"].as_str().expect("answer");
                let m = marks(answer);
                assert!(!m.is_empty(), "a generated answer cites: {body}");
                assert!(m.iter().all(|&n| n >= 1 && n <= citations.len()), "{body}");
                let g = &v["grounding"];
                assert!(g["kept"].as_u64().expect("kept") >= 1, "{body}");
                assert!(g["kept"].as_u64() <= g["sentences"].as_u64(), "{body}");
                assert!(usage["llm_tokens_in"].as_i64() > Some(0), "{body}");
                assert_eq!(v["fallback_code"], Value::Null);
            }
            (Some("answered"), Some("extractive_fallback")) => {
                let code = v["fallback_code"].as_str().expect("a fallback says why");
                assert!(
                    [
                        "grounding_insufficient",
                        "generator_declined",
                        // A loaded CI machine can outrun the deadline; still a fallback
                        // that says why.
                        "generator_timeout",
                        "generator_busy",
                    ]
                    .contains(&code),
                    "{body}"
                );
                assert!(
                    v["notices"][0].as_str().expect("notice").starts_with(code),
                    "{body}"
                );
                assert!(!citations.is_empty(), "{body}");
            }
            (Some("no_answer"), Some("generative")) => {
                assert!(citations.is_empty(), "{body}");
                assert_eq!(
                    usage["llm_tokens_in"], 0,
                    "the model is not asked without relevant passages: {body}"
                );
            }
            other => panic!("{q}: unexpected {other:?}: {body}"),
        }
    }
    println!(
        "generative: {generated} of {} questions answered by the model after grounding",
        questions.len()
    );
    assert!(llm_in > 0 && llm_out > 0, "the model was asked");
    // The model's output repeats exactly (temperature 0, one thread, no prompt cache): on
    // these questions some of it is grounded (3 of 5 when written), so the success path
    // above ran.
    assert!(generated >= 1, "no generated answer survived grounding");
    // Metered as their own kinds, once per query, and only for the tenant that asked.
    assert_eq!(ledger(&app, b.id, "llm_tokens_in").await, llm_in);
    assert_eq!(ledger(&app, b.id, "llm_tokens_out").await, llm_out);
    assert_eq!(ledger(&app, a.id, "llm_tokens_in").await, 0);
    let usage: Value = app
        .call(Method::GET, "/v1/usage", Some(&tb), None)
        .await
        .json()
        .await
        .expect("json");
    assert!(usage.to_string().contains("llm_tokens_in"), "{usage}");
    // A's own generative question is grounded in A's canary (the control: it is findable).
    let own = app
        .ask_final(
            &ta,
            "What is the ZEBRA-ALPHA-7731?",
            json!({"mode": "generative"}),
        )
        .await;
    assert_eq!(own["status"], "answered", "{own}");
    assert_eq!(own["citations"][0]["document_id"], a_id.as_str(), "{own}");
}

#[tokio::test]
async fn an_unreachable_model_answers_extractively_says_why_and_is_counted() {
    // Nothing listens on this port: every connection is refused.
    let url = format!("http://127.0.0.1:{}", free_port());
    let (app, _worker, t, owner) = consenting_tenant(&url, &[], "unreach").await;

    let v = app.ask(&owner, GOVERNING, json!({"mode": "generative"})).await;
    assert_eq!(
        (v["status"].as_str(), v["mode"].as_str()),
        (Some("answered"), Some("extractive_fallback")),
        "{v}"
    );
    assert_eq!(v["fallback_code"], "generator_unreachable");
    assert!(
        v["notices"][0]
            .as_str()
            .expect("notice")
            .starts_with("generator_unreachable: "),
        "{v}"
    );
    assert_eq!(v["usage"]["llm_tokens_in"], 0);
    let extractive = app.ask(&owner, GOVERNING, json!({})).await;
    assert_eq!(extractive["mode"], "extractive");
    assert_eq!(extractive["fallback_code"], Value::Null);
    assert_eq!(
        v["citations"], extractive["citations"],
        "the fallback is the extractive answer"
    );
    assert!(v["citations"].to_string().contains("State of Ohio"), "{v}");
    assert_eq!(ledger(&app, t.id, "llm_tokens_in").await, 0);
    let metrics = app.admin_get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("docket_answer_fallbacks{code=\"generator_unreachable\"} 1"),
        "{metrics}"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'queries.answer' AND details ->> 'fallback' = 'generator_unreachable'",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("audit");
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn the_default_mode_is_the_tenants_policy_and_the_gates_still_apply() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let app = spawn_app_with(&[("DOCKET_LLM_URL", url.as_str()), ("DOCKET_LLM_MODEL", MODEL)]).await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant_on("policy", "enterprise", "shared").await;
    let owner = app.owner_token(&t).await;
    app.upload_ready(&owner, "supply.txt", SUPPLY.to_vec()).await;
    let put = |body: Value| app.call(Method::PUT, "/v1/tenant/policy", Some(&owner), Some(body));

    expect_error(put(json!({})).await, 400, "empty_policy").await;
    let r = put(json!({"default_answer_mode": "generative"})).await;
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.expect("json");
    assert_eq!(
        p,
        json!({"refuse_flagged_input": false, "default_answer_mode": "generative"})
    );

    // No consent yet: a question without a mode is answered extractively, and says why.
    let v = app.ask(&owner, GOVERNING, json!({})).await;
    assert_eq!(
        (v["requested_mode"].as_str(), v["mode"].as_str()),
        (Some("extractive"), Some("extractive")),
        "{v}"
    );
    assert!(
        v["notices"][0]
            .as_str()
            .expect("notice")
            .starts_with("default_mode_unavailable: "),
        "{v}"
    );
    // Asked for explicitly, the consent gate refuses.
    expect_error(
        app.ask_raw(&owner, GOVERNING, json!({"mode": "generative"}), 0)
            .await,
        403,
        "consent_required",
    )
    .await;

    consent(&app, &owner, true).await;
    let v = app.ask(&owner, GOVERNING, json!({})).await;
    assert_eq!(v["requested_mode"], "generative", "{v}");
    assert_eq!(
        v["fallback_code"], "generator_unreachable",
        "the default went to the model: {v}"
    );
    // An explicit mode wins over the default.
    let v = app.ask(&owner, GOVERNING, json!({"mode": "extractive"})).await;
    assert_eq!(
        (v["requested_mode"].as_str(), v["mode"].as_str()),
        (Some("extractive"), Some("extractive"))
    );

    // A plan without the feature can neither ask nor make it the default.
    let team = app.create_tenant("teamplan").await;
    let team_owner = app.owner_token(&team).await;
    consent(&app, &team_owner, true).await;
    expect_error(
        app.call(
            Method::PUT,
            "/v1/tenant/policy",
            Some(&team_owner),
            Some(json!({"default_answer_mode": "generative"})),
        )
        .await,
        403,
        "feature_not_in_plan",
    )
    .await;
    expect_error(
        app.ask_raw(&team_owner, GOVERNING, json!({"mode": "generative"}), 0)
            .await,
        403,
        "feature_not_in_plan",
    )
    .await;
    expect_error(
        app.ask_raw(&owner, GOVERNING, json!({"mode": "poetic"}), 0).await,
        400,
        "invalid_body",
    )
    .await;
}

#[tokio::test]
async fn a_hanging_model_times_out_and_a_refused_key_is_reported() {
    // A model server that accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hang_url = format!("http://{}", hang.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            open.push(s);
        }
    });
    let (app, _worker, _, owner) =
        consenting_tenant(&hang_url, &[("DOCKET_LLM_TIMEOUT_SECS", "2")], "hang").await;
    let v = app.ask(&owner, GOVERNING, json!({"mode": "generative"})).await;
    assert_eq!(v["fallback_code"], "generator_timeout", "{v}");
    assert_eq!(v["mode"], "extractive_fallback");
    held.abort();
    drop(app);

    // The real server with a key; Docket configured with another one: 401, not retried.
    let llm = LocalLlm::start_with(&["--api-key", "right-key"]).await;
    let url = llm.url();
    let (app, _worker, _, owner) =
        consenting_tenant(&url, &[("DOCKET_LLM_API_KEY", "wrong-key")], "key").await;
    let v = app.ask(&owner, GOVERNING, json!({"mode": "generative"})).await;
    assert_eq!(v["fallback_code"], "generator_unauthorized", "{v}");
    assert!(
        v["notices"][0].as_str().expect("notice").contains("API key"),
        "{v}"
    );
    drop((app, llm));

    // The real server with a context too small for the passages: its 400
    // `exceed_context_size_error`, reported without the server's own words.
    let llm = LocalLlm::start_with(&["--ctx", "256", "--parallel", "1"]).await;
    let url = llm.url();
    let (app, _worker, _, owner) = consenting_tenant(&url, &[], "ctx").await;
    let v = app.ask(&owner, GOVERNING, json!({"mode": "generative"})).await;
    assert_eq!(v["fallback_code"], "generator_context_too_long", "{v}");
    let notice = v["notices"][0].as_str().expect("notice");
    assert!(
        !notice.contains("n_ctx") && !notice.contains("tokens)"),
        "the endpoint's text stays in the log: {notice}"
    );
}

#[tokio::test]
async fn a_consent_withdrawn_while_the_question_waits_stops_the_transfer() {
    let llm = LocalLlm::start().await;
    let url = llm.url();
    let app = spawn_app_with(&[("DOCKET_LLM_URL", url.as_str()), ("DOCKET_LLM_MODEL", MODEL)]).await;
    let t = app.create_tenant_on("withdraw", "enterprise", "shared").await;
    let owner = app.owner_token(&t).await;
    consent(&app, &owner, true).await;
    let mut worker = app.spawn_worker_process("w-before", true);
    app.upload_ready(&owner, "supply.txt", SUPPLY.to_vec()).await;
    worker.kill();
    // Asked with consent, then withdrawn before any worker picks the question up.
    let r = app
        .ask_raw(&owner, GOVERNING, json!({"mode": "generative"}), 0)
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.expect("json")["query_id"]
        .as_str()
        .expect("id")
        .to_owned();
    consent(&app, &owner, false).await;
    let _worker = app.spawn_worker_process("w-after", true);
    let queued = app.wait_query(&owner, &id).await;
    assert_eq!(queued["status"], "answered", "{queued}");
    assert_eq!(queued["requested_mode"], "generative", "{queued}");
    assert_eq!(queued["mode"], "extractive_fallback", "{queued}");
    assert_eq!(queued["fallback_code"], "consent_withdrawn", "{queued}");
    assert_eq!(queued["usage"]["llm_tokens_in"], 0, "nothing was sent: {queued}");
    assert_eq!(ledger(&app, t.id, "llm_tokens_in").await, 0);
}
