// Two Way Video Chat & Screen page (/video-chat-screen): the video chat plus a Share button that
// publishes a screen or a window as a second, video-only stream.
import { start } from './room-app.js';

window.webcallApp = start({ capacity: 2, screen: true });
