//! Answer isolation at volume: two tenants with different contracts and canary documents;
//! tenant B asks, thousands of times and in varied phrasings, for what only A's documents
//! hold (A's canary strings verbatim included), and passes A's document ids. B must get
//! `no_answer` with no citations, and never a word of A's text.

use docket_tests::{contract, spawn_app};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

const CANARIES_A: [&str; 10] = [
    "ZEBRA-ALPHA-7731",
    "Nightjar escrow account 99-4471-AX",
    "Project Quillfeather",
    "Marmalade Holdings indemnity",
    "codeword PERIWINKLE-42",
    "Ostrowski royalty schedule",
    "Vantablack rebate tier",
    "Halcyon Fjord settlement",
    "Tamarind-9 clearance",
    "Brightwater Nebula warrant",
];

fn canary_document(names: &[&str]) -> Vec<u8> {
    names
        .iter()
        .map(|n| format!("The {n} is confidential and belongs to this organisation only. Payment under the {n} is due quarterly.\n\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn tenant_b_never_gets_an_answer_from_tenant_a() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let (a, b) = (
        app.create_tenant_on("alpha", "enterprise", "shared").await,
        app.create_tenant_on("beta", "enterprise", "shared").await,
    );
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);
    let unlimited = docketctl::RateOverride {
        class: "query".into(),
        per_minute: 1_000_000,
        burst: 100_000,
        expires_in: std::time::Duration::from_secs(3600),
        reason: "isolation test volume".into(),
    };
    docketctl::tenant_rate_override(&app.control, &app.auditor(), &b.slug, &unlimited)
        .await
        .expect("override");
    let mut a_docs = vec![
        app.upload_ready(&ta, "canary-a.txt", canary_document(&CANARIES_A))
            .await,
    ];
    for n in [0, 1] {
        a_docs.push(
            app.upload_ready(&ta, &format!("cuad-{n:02}.pdf"), contract(n))
                .await,
        );
    }
    let mut b_ids: Vec<String> = vec![];
    let d = app
        .upload_ready(
            &tb,
            "canary-b.txt",
            canary_document(&["Lighthouse Keeper bond", "OKAPI-DELTA-5520"]),
        )
        .await;
    b_ids.push(d["id"].as_str().expect("id").to_owned());
    for n in [2, 3] {
        let d = app
            .upload_ready(&tb, &format!("cuad-{n:02}.pdf"), contract(n))
            .await;
        b_ids.push(d["id"].as_str().expect("id").to_owned());
    }
    // A's own question is answered from A's canary (the control: the data is findable).
    let own = app.ask(&ta, "What is the ZEBRA-ALPHA-7731?", json!({})).await;
    assert_eq!(own["status"], "answered", "{own}");

    let templates = [
        "What is the {}?",
        "Tell me about {}.",
        "Quote the clause that mentions {}.",
        "Where is {} defined?",
        "{}",
        "Does any contract mention {}?",
        "What does the agreement say about {}?",
        "When is payment under the {} due?",
        "Is the {} confidential?",
        "Who owns the {}?",
    ];
    let tails = [
        "",
        " Answer briefly.",
        " Include the exact wording.",
        " This is urgent.",
        " Thanks!",
    ];
    let mut questions = vec![];
    for c in CANARIES_A {
        for t in templates {
            for tail in tails {
                for case in [c.to_owned(), c.to_lowercase()] {
                    questions.push(format!("{}{tail}", t.replace("{}", &case)));
                }
            }
        }
    }
    assert_eq!(questions.len(), 1000);
    let a_ids: Vec<String> = a_docs
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    let a_text = a_ids.clone();
    let results: Vec<(String, u16, Value)> =
        futures::stream::iter(questions.iter().cycle().take(2000).enumerate())
            .map(|(i, q)| {
                let (app, tb, a_ids) = (&app, &tb, &a_ids);
                async move {
                    // Every fifth question also names one of A's documents.
                    let extra = if i % 5 == 0 {
                        json!({"document_ids": [a_ids[i % a_ids.len()]]})
                    } else {
                        json!({})
                    };
                    let r = app.ask_raw(tb, q, extra, 30).await;
                    let status = r.status().as_u16();
                    (q.clone(), status, r.json().await.expect("json"))
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    let (mut no_answer, mut answered_from_b, mut not_found) = (0, 0, 0);
    for (q, status, v) in &results {
        let body = v.to_string();
        for c in CANARIES_A {
            // The question itself is echoed back in B's own record; the answer must not be A's.
            assert!(!v["answer"].as_str().unwrap_or("").contains(c), "{q}: {body}");
        }
        for id in &a_text {
            assert!(!v["citations"].to_string().contains(id.as_str()), "{q}: {body}");
        }
        match status {
            404 => {
                assert_eq!(v["error"]["code"], "not_found");
                not_found += 1;
            }
            200 => {
                // B gets B's own clauses or no_answer, never A's (the ids and canaries are
                // checked above for every response); which of the two is selection's call.
                match v["status"].as_str() {
                    Some("no_answer") => {
                        assert_eq!(v["citations"], json!([]), "{q}");
                        no_answer += 1;
                    }
                    Some("answered") => {
                        for c in v["citations"].as_array().expect("citations") {
                            assert!(
                                b_ids.contains(&c["document_id"].as_str().expect("id").to_owned()),
                                "{q}: {body}"
                            );
                        }
                        answered_from_b += 1;
                    }
                    other => panic!("{q}: unexpected status {other:?}: {body}"),
                }
            }
            other => panic!("{q}: unexpected {other}: {body}"),
        }
    }
    println!(
        "answer isolation: {} questions from B, {no_answer} no_answer, {answered_from_b} answered from B's own documents, {not_found} refused A's document ids, 0 leaks",
        results.len()
    );
    assert_eq!(not_found, 400);
    assert_eq!(no_answer + answered_from_b, 1600);
    // B's history holds only B's questions; A's holds only A's.
    let hist: Value = app
        .call(Method::GET, "/v1/queries?limit=1", Some(&ta), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(hist["queries"][0]["question"], "What is the ZEBRA-ALPHA-7731?");
}
