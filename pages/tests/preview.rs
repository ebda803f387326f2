//! Writes every page to `/tmp/pages-preview/` for a visual check in a browser (ignored by
//! default; run with `cargo test -p menshen-pages --test preview -- --ignored`).

use menshen_pages::*;

fn write(dir: &std::path::Path, name: &str, html: &str) {
    let html = html.replace("/.menshen/static/", "./");
    std::fs::write(dir.join(name), html).expect("write page");
}

#[test]
#[ignore]
fn write_preview() {
    let dir = std::path::Path::new("/tmp/pages-preview");
    std::fs::create_dir_all(dir).expect("create dir");
    for name in ["menshen.css", "favicon.svg"] {
        let asset = static_asset(name).expect("asset");
        std::fs::write(dir.join(name), asset.body).expect("write asset");
    }
    let methods = [
        OtherMethod {
            label: "自然人憑證登入",
            href: "/.menshen/certificate",
        },
        OtherMethod {
            label: "Google帳號登入",
            href: "/.menshen/oidc/google/start",
        },
    ];
    let methods_en = [
        OtherMethod {
            label: "Citizen digital certificate",
            href: "/.menshen/certificate",
        },
        OtherMethod {
            label: "Google account",
            href: "/.menshen/oidc/google/start",
        },
    ];
    let notice = "各位師長好：\n本系統資安等級由C級調升為B級，系統修改帳號規則複雜度，造成不便，敬請見諒。\n請勿使用瀏覽器自動儲存帳號密碼功能，請直接輸入帳號及密碼。";
    let support = "☎ 03-5622056（代表號）\n週一至週五 上午 08:30–12:00，下午 13:00–17:30\n（例假日及國定假日除外）";
    let page = LoginPage {
        lang: Lang::ZhTw,
        site_name: "屏東縣學籍管理系統 2.0",
        csrf: "abc",
        rd: "/students?grade=3",
        username: "teacher01",
        message: Some(LoginMessage::InvalidCredentials),
        notice: Some(notice),
        support: Some(support),
        other_methods: &methods,
    };
    write(dir, "login.html", &render_login(&page));
    write(
        dir,
        "login-en.html",
        &render_login(&LoginPage {
            lang: Lang::En,
            message: Some(LoginMessage::LoggedOut),
            notice: Some(
                "Maintenance on Saturday 22:00–24:00.\nSign-in is unavailable during that time.",
            ),
            support: Some("Phone 03-5622056\nMon–Fri 08:30–12:00, 13:00–17:30"),
            other_methods: &methods_en,
            username: "",
            ..page
        }),
    );
    write(
        dir,
        "login-plain.html",
        &render_login(&LoginPage {
            message: None,
            notice: None,
            support: None,
            other_methods: &[],
            username: "",
            ..page
        }),
    );
    write(
        dir,
        "error.html",
        &render_error(&ErrorPage {
            lang: Lang::ZhTw,
            kind: ErrorKind::UpstreamDown,
            detail: Some("connection refused"),
        }),
    );
    write(
        dir,
        "error-en.html",
        &render_error(&ErrorPage {
            lang: Lang::En,
            kind: ErrorKind::Unavailable,
            detail: None,
        }),
    );
    write(
        dir,
        "signed-in.html",
        &render_signed_in(&SignedInPage {
            lang: Lang::ZhTw,
            display_name: "王小明",
            login_name: "wang01",
            csrf: "abc",
        }),
    );
    let headers: Vec<(String, String)> = [
        ("host", "registry.example.edu.tw"),
        ("x-menshen-user", "wang01"),
        ("x-menshen-name", "%E7%8E%8B%E5%B0%8F%E6%98%8E"),
        ("x-menshen-roles", "teacher,registrar"),
        ("x-menshen-school", "133601"),
        ("x-menshen-auth-method", "password+otp"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    write(
        dir,
        "demo.html",
        &render_demo_app(&DemoAppPage {
            path: "/students?grade=3",
            headers: &headers,
            identity_prefix: "x-menshen-",
        }),
    );
}
