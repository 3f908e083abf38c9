import { describe, expect, it } from 'vitest';
import { type GrantState, grantStateAfterLink, grantStateAfterWebhook, UNKNOWN_GRANT_STATE } from '../../src/domain/grant';

const active: GrantState = { status: 'active', lastError: null };
const loginError = { errorCode: 'GRANT_LOGIN_REQUIRED', errorMessage: 'Thông tin đăng nhập đã thay đổi' };

describe('grant status from GRANT webhooks', () => {
  it.each<[string, GrantState, string, { errorCode: string | null; errorMessage: string | null } | null, GrantState]>([
    ['login required', active, 'ERROR', loginError, { status: 'login_required', lastError: loginError }],
    ['OTP required', active, 'ERROR', { errorCode: 'OTP_REQUIRED', errorMessage: null }, { status: 'login_required', lastError: { errorCode: 'OTP_REQUIRED', errorMessage: null } }],
    ['another error', active, 'ERROR', { errorCode: 'PREVENTED', errorMessage: 'x' }, { status: 'error', lastError: { errorCode: 'PREVENTED', errorMessage: 'x' } }],
    ['paused', active, 'GRANT_PAUSED', null, { status: 'paused', lastError: null }],
    ['permission revoked', active, 'USER_PERMISSION_REVOKED', null, { status: 'revoked', lastError: null }],
    ['deleted', active, 'GRANT_DELETED', null, { status: 'revoked', lastError: null }],
    ['working again', { status: 'login_required', lastError: loginError }, 'DEFAULT_UPDATE', null, active],
    ['resumed after a pause', { status: 'paused', lastError: null }, 'DEFAULT_UPDATE', null, active],
    ['an unknown code keeps the status', { status: 'paused', lastError: null }, 'SOMETHING_NEW', null, { status: 'paused', lastError: null }],
    ['an unknown code still keeps its error', active, 'SOMETHING_NEW', loginError, { status: 'active', lastError: loginError }],
    ['an error without a code', active, 'ERROR', null, { status: 'error', lastError: null }],
    ['revoked stays revoked', { status: 'revoked', lastError: null }, 'DEFAULT_UPDATE', null, { status: 'revoked', lastError: null }],
    ['a paused grant that needs a login', { status: 'paused', lastError: null }, 'ERROR', loginError, { status: 'login_required', lastError: loginError }],
  ])('%s', (_name, current, code, error, expected) => {
    expect(grantStateAfterWebhook(current, code, error)).toEqual(expected);
  });

  it('keeps the last error through a pause, and forgets it once Cas reports the grant working', () => {
    const afterError = grantStateAfterWebhook(active, 'ERROR', loginError);
    const paused = grantStateAfterWebhook(afterError, 'GRANT_PAUSED', null);
    expect(paused).toEqual({ status: 'paused', lastError: loginError });
    expect(grantStateAfterWebhook(paused, 'DEFAULT_UPDATE', null)).toEqual(active);
  });

  it('a link makes a grant active and clears its error, but does not revive a revoked one', () => {
    expect(grantStateAfterLink(null)).toEqual(active);
    expect(grantStateAfterLink({ status: 'login_required', lastError: loginError })).toEqual(active);
    expect(grantStateAfterLink({ status: 'revoked', lastError: null })).toEqual({ status: 'revoked', lastError: null });
    expect(UNKNOWN_GRANT_STATE).toEqual(active);
  });
});
