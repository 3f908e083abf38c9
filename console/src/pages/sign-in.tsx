import { useState } from 'preact/hooks';
import { ApiProblem, type Me, whoAmI } from '../api';
import type { Messages } from '../i18n';

/** The key goes to GET /me; only a key the service accepts is kept (in this tab's session storage). */
export function SignIn({ t, onSignedIn, notice }: { t: Messages; onSignedIn: (key: string, me: Me) => void; notice: string | null }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      const me = await whoAmI(key.trim());
      onSignedIn(key.trim(), me);
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, String(error), undefined));
      setBusy(false);
    }
  };
  return (
    <main id="main" class="sign-in">
      <h1>{t.signInTitle}</h1>
      <p>{t.signInIntro}</p>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      <form onSubmit={submit}>
        <label for="api-key">{t.apiKey}</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={key}
          aria-describedby="api-key-hint"
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
        <p id="api-key-hint" class="hint">
          {t.apiKeyHint}
        </p>
        <button type="submit" disabled={busy}>
          {busy ? t.signingIn : t.signIn}
        </button>
      </form>
      {problem && (
        <div class="problem" role="alert">
          <p class="problem-title">{problem.title}</p>
          {problem.detail && <p class="problem-detail">{problem.detail}</p>}
        </div>
      )}
    </main>
  );
}
